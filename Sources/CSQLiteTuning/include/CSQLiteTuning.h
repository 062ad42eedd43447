#ifndef CSQLITE_TUNING_H
#define CSQLITE_TUNING_H

/// Whether SQLite's memory statistics were turned off before SQLite initialized (see the .c file).
int canon_sqlite_memstatus_disabled(void);

#endif
