#ifndef SSMKIT_FILES_H
#define SSMKIT_FILES_H

/* Atomically exchanges the paths `a` and `b` (both must exist; Linux renameat2 with
   RENAME_EXCHANGE). Returns 0, or -1 with errno set. */
int ssm_exchange_paths(const char *a, const char *b);

/* fsync of the directory `path`, so that a rename inside it survives a crash. Returns 0 or -1. */
int ssm_sync_directory(const char *path);

#endif
