// SQLite settings that must be made before SQLite initializes, which Swift cannot make itself:
// sqlite3_config is variadic.
#include <sqlite3.h>
#include "CSQLiteTuning.h"

static int memstatus_disabled = 0;

// SQLite counts every allocation in global statistics under one global mutex. Two threads using
// SQLite at once (a projection folding documents on a reader connection while its writer writes,
// or the two content scans of a rebuild's comparison) then spend a third of their time handing
// that mutex back and forth. Nothing in Canon reads those statistics.
//
// It runs when the program loads, before any connection opens (sqlite3_config is refused once
// SQLite has initialized).
__attribute__((constructor))
static void canon_sqlite_configure(void) {
    memstatus_disabled = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
}

int canon_sqlite_memstatus_disabled(void) {
    return memstatus_disabled;
}
