/* file: whole-file reads and read-only memory maps.
 *
 * A vc_map owns its mapping until vc_map_free(); vc_map_free() is safe on a
 * zeroed struct. Errors name the path. */
#ifndef VLLMC_BASE_FILE_H
#define VLLMC_BASE_FILE_H

#include <stddef.h>

typedef struct {
    void *data;   /* start of the mapping (NULL for an empty file) */
    size_t size;  /* bytes */
} vc_map;

int vc_map_open(const char *path, vc_map *out);
void vc_map_free(vc_map *m);

/* Read a whole file into a malloc'd, NUL-terminated buffer; *len excludes the NUL.
 * Files larger than max_bytes are refused (protects against huge configs). */
int vc_read_file(const char *path, size_t max_bytes, char **out, size_t *len);
int vc_file_exists(const char *path);
/* "dir/name" in a malloc'd string (NULL when out of memory). */
char *vc_path_join(const char *dir, const char *name);

#endif
