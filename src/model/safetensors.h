/* safetensors: the header of .safetensors files, parsed in place over an mmap,
 * and sets of files (one file, or shards listed by model.safetensors.index.json).
 *
 * File layout: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data area. Every offset, size and shape is
 * checked against the file size and dtype (overflow included) before use: a
 * tensor returned by st_find() can be read in full without going out of bounds.
 *
 * Ownership: an st_set owns its mappings and tensor tables; tensor `data`
 * pointers point into the mappings and stay valid until st_set_free(). */
#ifndef VLLMC_MODEL_SAFETENSORS_H
#define VLLMC_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/file.h"

#define ST_MAX_DIMS 8

/* The dtypes a file may hold. Separate from be_dtype (backend.h, the dtypes vllmc computes in:
 * F32/F16/BF16 and I32 indices) because a valid checkpoint can carry tensors vllmc never runs
 * (I64 position ids, F64, FP8, BOOL masks): the parser must size and bounds-check every one of
 * them, and the model loader names the unsupported ones in its error. */
typedef enum {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
    ST_F8_E4M3, ST_F8_E5M2, ST_U16, ST_U32, ST_U64,
} st_dtype;

typedef struct {
    char *name;           /* NUL-terminated tensor name */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data;     /* into the file mapping */
    size_t nbytes;        /* = product(shape) * dtype size, checked */
    int file;             /* index into st_set.files */
} st_tensor;

typedef struct {
    char *path;
    vc_map map;
} st_file;

typedef struct {
    st_file *files;
    int n_files;
    st_tensor *tensors;   /* all tensors of all files, sorted by name */
    int n_tensors;
} st_set;

size_t st_dtype_size(st_dtype t);
const char *st_dtype_name(st_dtype t);

/* Parse a safetensors header from memory (used on the mmap and by the fuzz target).
 * On success *out / *n_out hold malloc'd tensors whose data pointers point into `buf`;
 * free with st_tensors_free(). `what` names the source in error messages. */
int st_parse(const void *buf, size_t size, const char *what, st_tensor **out, int *n_out);
void st_tensors_free(st_tensor *t, int n);

/* Open a model folder's weights: model.safetensors.index.json if present (every
 * shard it names, and every tensor it lists must exist in the named shard), else
 * model.safetensors, else the single *.safetensors file in the folder.
 * Duplicate tensor names across shards are an error. Errors name the file. */
int st_set_open_dir(const char *dir, st_set *out);
/* Open exactly these files (tests, tools). */
int st_set_open_files(const char *const *paths, int n, st_set *out);
const st_tensor *st_find(const st_set *s, const char *name);
void st_set_free(st_set *s);

/* Parse the "weight_map" of an index.json text into unique shard file names
 * (malloc'd array of malloc'd strings). Exposed for the fuzz target. */
int st_parse_index(const char *json, size_t len, const char *what, char ***files, int *n_files);

#endif
