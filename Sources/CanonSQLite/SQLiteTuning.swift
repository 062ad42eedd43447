import CSQLiteTuning

/// Process-wide SQLite settings, made in C when the program loads (`CSQLiteTuning`).
public enum SQLiteTuning {
    /// Whether SQLite's global memory statistics are off, so that threads using SQLite at once do
    /// not contend for the one mutex that guards them.
    public static var memoryStatisticsOff: Bool { canon_sqlite_memstatus_disabled() != 0 }
}
