//! Test support: runs one generic test case on every item store this build has (memory always, SQLite with
//! feature `local`), each on a multi-threaded runtime so spawned tasks really run at once.

/// For each `case` (an `async fn(store, clock)` in the calling module), generates a test per store.
macro_rules! each_store {
    ($($case:ident),* $(,)?) => {
        mod memory_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let clock = std::sync::Arc::new($crate::adapters::memory::ManualClock::new(
                        $crate::ports::Timestamp::from_secs(1_800_000_000),
                    ));
                    let store = $crate::adapters::memory::MemoryItemStore::new(clock.clone());
                    super::$case(store, clock).await;
                }
            )*
        }

        #[cfg(feature = "local")]
        mod sqlite_store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let clock = std::sync::Arc::new($crate::adapters::memory::ManualClock::new(
                        $crate::ports::Timestamp::from_secs(1_800_000_000),
                    ));
                    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
                    let db = $crate::adapters::sqlite::SqliteDb::open(&dir.path().join("store.db"), clock.clone())
                        .unwrap_or_else(|e| panic!("{e:#}"));
                    super::$case(db.item_store(), clock).await;
                }
            )*
        }
    };
}
pub(crate) use each_store;
