//! Concurrent writers: no registration may be lost.

use std::collections::BTreeSet;

use strata_catalog::{Catalog, Error, Warehouse};

use crate::put;

/// Protects the create-if-absent commit protocol: 8 writers, each with its own catalog
/// handle and its own OS thread and runtime (as separate processes would be), register 25
/// tables each at the same time; every one of the 200 must be there afterwards.
#[test]
fn eight_threads_lose_no_registration() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().to_string();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|w| {
            let root = root.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                rt.block_on(async move {
                    let catalog = Catalog::open(Warehouse::open(&root).expect("warehouse"))
                        .await
                        .expect("open");
                    barrier.wait();
                    for i in 0..25 {
                        let name = format!("t_{w}_{i}");
                        catalog
                            .commit("test", |_| Ok(vec![put("raw", &name)]))
                            .await
                            .expect("commit");
                    }
                })
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer thread panicked");
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let catalog = Catalog::open(Warehouse::open(&root).expect("warehouse"))
            .await
            .expect("open");
        let state = catalog.snapshot();
        let names: BTreeSet<String> = state.table_names("raw").into_iter().collect();
        let expected: BTreeSet<String> = (0..8)
            .flat_map(|w| (0..25).map(move |i| format!("t_{w}_{i}")))
            .collect();
        assert_eq!(names, expected);
        // One commit for the warehouse, one per registration: nothing merged or dropped.
        assert_eq!(state.version, Some(200));
    });
}

/// Two writers registering the same name: exactly one wins, the other is told it exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_name_race_has_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_string_lossy().to_string();
    let a = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let b = Catalog::open(Warehouse::open(&root).expect("wh"))
        .await
        .expect("open");
    let register = |c: std::sync::Arc<Catalog>| async move {
        c.commit("test", |state| {
            if state.table("raw", "dup").is_ok() {
                return Err(Error::TableExists {
                    zone: "raw".into(),
                    name: "dup".into(),
                });
            }
            Ok(vec![put("raw", "dup")])
        })
        .await
    };
    let (ra, rb) = tokio::join!(register(a), register(b));
    let outcomes = [ra.is_ok(), rb.is_ok()];
    assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
    let loser = if ra.is_err() { ra } else { rb };
    assert!(matches!(loser, Err(Error::TableExists { .. })));
}
