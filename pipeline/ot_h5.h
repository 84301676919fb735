/* Small HDF5 helpers shared by every file format of the project (shards,
 * checkpoints, embeddings). */
#ifndef OT_H5_H
#define OT_H5_H

#include <hdf5.h>

/* Our messages name the file and the operation; HDF5's own error stack
 * printing is turned off (process-wide). */
void ot_h5_quiet(void);
/* A variable-length UTF-8 string type; the caller closes it (H5Tclose). */
hid_t ot_h5_utf8_type(void);

#endif
