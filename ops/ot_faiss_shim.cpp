/* The subset of FAISS's official C API (headers in faiss/c_api/) that
 * Open-Tag calls, implemented over the C++ library for systems whose FAISS
 * ships the C headers but not libfaiss_c (Debian 12's libfaiss-dev 1.7.3).
 * Built only when CMake finds no libfaiss_c; on a cluster with the real C
 * API the project links that instead, so every function here keeps the
 * upstream signature and semantics: 0 on success, a negative FaissErrorCode
 * after an exception, the exception's message through faiss_get_last_error()
 * (thread-local, as upstream's error_impl.cpp). */
#include <faiss/AutoTune.h>
#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <cstdio>
#include <exception>
#include <string>

extern "C" {
#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/IndexIVF_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
}

namespace {

thread_local std::string last_error;

/* Run `body`; map exceptions to the C API's codes like upstream's
 * CATCH_AND_HANDLE. */
template <class F>
int guarded(F body) {
  try {
    body();
    return 0;
  } catch (const faiss::FaissException &e) {
    last_error = e.what();
    return FAISS_EXCEPT;
  } catch (const std::exception &e) {
    last_error = e.what();
    return STD_EXCEPT;
  } catch (...) {
    last_error = "unknown exception";
    return UNKNOWN_EXCEPT;
  }
}

faiss::Index *cpp(FaissIndex *p) { return reinterpret_cast<faiss::Index *>(p); }
const faiss::Index *cpp(const FaissIndex *p) { return reinterpret_cast<const faiss::Index *>(p); }
faiss::IndexIVF *ivf(FaissIndexIVF *p) { return reinterpret_cast<faiss::IndexIVF *>(p); }
const faiss::IndexIVF *ivf(const FaissIndexIVF *p) { return reinterpret_cast<const faiss::IndexIVF *>(p); }
FaissIndex *c(faiss::Index *p) { return reinterpret_cast<FaissIndex *>(p); }

}  // namespace

extern "C" {

const char *faiss_get_last_error() { return last_error.empty() ? nullptr : last_error.c_str(); }

int faiss_index_factory(FaissIndex **p_index, int d, const char *description, FaissMetricType metric) {
  return guarded([&] {
    *p_index = c(faiss::index_factory(d, description, static_cast<faiss::MetricType>(metric)));
  });
}

void faiss_Index_free(FaissIndex *obj) { delete cpp(obj); }
int faiss_Index_d(const FaissIndex *index) { return cpp(index)->d; }
int faiss_Index_is_trained(const FaissIndex *index) { return cpp(index)->is_trained; }
idx_t faiss_Index_ntotal(const FaissIndex *index) { return cpp(index)->ntotal; }
FaissMetricType faiss_Index_metric_type(const FaissIndex *index) {
  return static_cast<FaissMetricType>(cpp(index)->metric_type);
}

int faiss_Index_train(FaissIndex *index, idx_t n, const float *x) {
  return guarded([&] { cpp(index)->train(n, x); });
}

int faiss_Index_add(FaissIndex *index, idx_t n, const float *x) {
  return guarded([&] { cpp(index)->add(n, x); });
}

int faiss_Index_search(const FaissIndex *index, idx_t n, const float *x, idx_t k, float *distances,
                       idx_t *labels) {
  static_assert(sizeof(idx_t) == sizeof(faiss::Index::idx_t), "FAISS id type");
  return guarded([&] {
    cpp(index)->search(n, x, k, distances, reinterpret_cast<faiss::Index::idx_t *>(labels));
  });
}

int faiss_Index_reset(FaissIndex *index) {
  return guarded([&] { cpp(index)->reset(); });
}

int faiss_write_index(const FaissIndex *idx, FILE *f) {
  return guarded([&] { faiss::write_index(cpp(idx), f); });
}

int faiss_write_index_fname(const FaissIndex *idx, const char *fname) {
  return guarded([&] { faiss::write_index(cpp(idx), fname); });
}

int faiss_read_index(FILE *f, int io_flags, FaissIndex **p_out) {
  return guarded([&] { *p_out = c(faiss::read_index(f, io_flags)); });
}

int faiss_read_index_fname(const char *fname, int io_flags, FaissIndex **p_out) {
  return guarded([&] { *p_out = c(faiss::read_index(fname, io_flags)); });
}

FaissIndexIVF *faiss_IndexIVF_cast(FaissIndex *index) {
  return reinterpret_cast<FaissIndexIVF *>(dynamic_cast<faiss::IndexIVF *>(cpp(index)));
}

size_t faiss_IndexIVF_nlist(const FaissIndexIVF *index) { return ivf(index)->nlist; }
size_t faiss_IndexIVF_nprobe(const FaissIndexIVF *index) { return ivf(index)->nprobe; }
void faiss_IndexIVF_set_nprobe(FaissIndexIVF *index, size_t nprobe) { ivf(index)->nprobe = nprobe; }

int faiss_IndexIVF_merge_from(FaissIndexIVF *index, FaissIndexIVF *other, idx_t add_id) {
  return guarded([&] { ivf(index)->merge_from(*ivf(other), add_id); });
}

int faiss_ParameterSpace_new(FaissParameterSpace **space) {
  return guarded([&] { *space = reinterpret_cast<FaissParameterSpace *>(new faiss::ParameterSpace()); });
}

void faiss_ParameterSpace_free(FaissParameterSpace *space) {
  delete reinterpret_cast<faiss::ParameterSpace *>(space);
}

int faiss_ParameterSpace_set_index_parameter(const FaissParameterSpace *space, FaissIndex *index,
                                             const char *name, double value) {
  return guarded([&] {
    reinterpret_cast<const faiss::ParameterSpace *>(space)->set_index_parameter(cpp(index), name, value);
  });
}

}  // extern "C"
