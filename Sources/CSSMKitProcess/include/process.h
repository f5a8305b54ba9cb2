// Process-wide settings the `ssm` tool makes at start-up (never the library: they belong to
// the program that links it).
#ifndef SSMKIT_PROCESS_H
#define SSMKIT_PROCESS_H

/// Keeps freed large blocks in the heap instead of unmapping them (glibc's mallopt; a no-op
/// elsewhere). Returns 1 when the setting was applied.
int ssm_keep_freed_memory(void);

#endif
