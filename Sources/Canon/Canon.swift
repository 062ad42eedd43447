/// Canon: polyglot persistence with discipline.
///
/// This module holds the engine-neutral contracts. It knows no SQL dialect, no HTTP and no
/// domain:
/// - the event envelope (`EventEnvelope`, `OutboxPosition`, `StreamID`) and pending events;
/// - the canonical store contract (`CanonicalStore`, `UnitOfWork`, `RowMutation`, `RowQuery`)
///   with its transactional outbox, and `OutboxWriter`, the rules every engine applies;
/// - the engine-neutral schema model (`TableSchema`, `SchemaMigration`) from which each engine
///   makes its DDL;
/// - `InMemoryCanonicalStore`, the in-memory engine for tests of logic;
/// - `DataDirectory`, the layout of an embedded installation.
public enum CanonModule {}
