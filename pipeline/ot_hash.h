/* FNV-1a hashes: the emoji split rule (32-bit) and config fingerprints (64-bit). */
#ifndef OT_HASH_H
#define OT_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t ot_fnv1a32(const void *data, size_t n);
uint64_t ot_fnv1a64(const void *data, size_t n, uint64_t seed);
#define OT_FNV64_INIT 0xcbf29ce484222325ULL

#endif
