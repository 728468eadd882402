//! The journal against real files: replay, idempotency, group commit, failures, shutdown.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sb-journal-{}-{}", std::process::id(), n));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime builds")
}

fn options() -> JournalOptions {
    JournalOptions::default()
}

fn open(dir: &TempDir) -> (Journal, Replay) {
    Journal::open(dir.path(), options()).expect("journal opens")
}

fn contact(id: u64, arrived_at: UnixMillis) -> ContactRecord {
    ContactRecord {
        id,
        channel: "sms".into(),
        queue: "billing".into(),
        skills: BTreeMap::from([("billing".into(), 2), ("french".into(), 1)]),
        priority: 5,
        arrived_at,
        preferred_agent: None,
        payload: json!({"customer": {"phone": "+33 6 00 00 00 00"}, "body": format!("hello {id}")}),
        sla: None,
        classification: None,
    }
}

fn accepted(id: u64, arrived_at: UnixMillis, key: Option<&str>) -> Record {
    Record::Accepted {
        contact: contact(id, arrived_at),
        idempotency_key: key.map(str::to_owned),
        response: json!({"id": id.to_string(), "status": "queued"}),
    }
}

fn status(id: u64, status: &str, agent: Option<&str>, at: UnixMillis) -> Record {
    Record::Status {
        contact: id,
        status: status.into(),
        agent: agent.map(str::to_owned),
        at,
    }
}

fn closed(id: u64, outcome: &str, at: UnixMillis) -> Record {
    Record::Closed {
        contact: id,
        outcome: outcome.into(),
        at,
        disposition: None,
    }
}

/// A completion with the agent's wrap-up code.
fn completed_as(id: u64, disposition: &str, at: UnixMillis) -> Record {
    Record::Closed {
        contact: id,
        outcome: "completed".into(),
        at,
        disposition: Some(disposition.into()),
    }
}

/// `PRAGMA user_version` of the file in `dir`, read beside the journal.
fn schema_version(dir: &TempDir) -> i64 {
    rusqlite::Connection::open(dir.path().join(DB_FILE))
        .expect("second connection")
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("user_version")
}

fn agent(id: &str, name: &str, at: UnixMillis) -> AgentRecord {
    AgentRecord {
        id: id.into(),
        name: Some(name.into()),
        token_hash: format!("hash-of-{id}-{at}"),
        profile: json!({"skills": {"billing": 3}, "capacity": {"sms": 2}}),
        updated_at: at,
    }
}

#[test]
fn reopen_replays_open_contacts_with_status_and_agent_but_not_closed_ones() {
    let dir = TempDir::new();
    let rt = runtime();
    let (journal, replay) = open(&dir);
    assert_eq!(
        replay,
        Replay {
            next_contact_id: 1,
            ..Replay::default()
        }
    );

    rt.block_on(async {
        // Ids and arrival order disagree on purpose: replay follows arrival.
        journal
            .append(vec![accepted(1, 1_000, None), accepted(2, 900, None)])
            .await
            .expect("accepted");
        journal
            .append(vec![accepted(3, 1_100, None)])
            .await
            .expect("accepted");
        journal
            .append(vec![
                status(1, "offered", Some("alice"), 1_200),
                status(1, "assigned", Some("alice"), 1_300),
                status(2, "offered", Some("bob"), 1_250),
                closed(2, "completed", 1_400),
                // A late report about a closed contact does not reopen it.
                status(2, "queued", None, 1_500),
            ])
            .await
            .expect("transitions");
    });
    journal.close().expect("close");

    let (journal, replay) = open(&dir);
    assert_eq!(
        replay.open,
        vec![
            OpenContact {
                contact: contact(1, 1_000),
                status: "assigned".into(),
                agent: Some("alice".into()),
            },
            OpenContact {
                contact: contact(3, 1_100),
                status: "queued".into(),
                agent: None,
            },
        ]
    );
    assert_eq!(replay.next_contact_id, 4);

    let gone = journal
        .lookup(2)
        .expect("lookup")
        .expect("contact 2 is stored");
    assert_eq!(gone.contact, contact(2, 900));
    assert_eq!(gone.status, "completed");
    assert_eq!(gone.outcome.as_deref(), Some("completed"));
    assert_eq!(gone.agent.as_deref(), Some("bob"));
    assert_eq!(
        (gone.arrived_at, gone.updated_at, gone.closed_at),
        (900, 1_400, Some(1_400))
    );
    let live = journal
        .lookup(1)
        .expect("lookup")
        .expect("contact 1 is stored");
    assert_eq!((live.status.as_str(), live.closed_at), ("assigned", None));
    assert_eq!(journal.lookup(99).expect("lookup"), None);
    journal.close().expect("close");
}

#[test]
fn idempotency_keys_and_agents_survive_reopen_and_ids_continue() {
    let dir = TempDir::new();
    let rt = runtime();
    let (journal, _) = open(&dir);
    rt.block_on(async {
        journal
            .append(vec![accepted(7, 10, Some("order-7"))])
            .await
            .expect("7");
        journal
            .append(vec![accepted(3, 20, None)])
            .await
            .expect("3");
        journal
            .append(vec![Record::Agent(agent("alice", "Alice", 30))])
            .await
            .expect("alice");
        journal
            .append(vec![
                Record::Agent(agent("bob", "Bob", 40)),
                // An update replaces the agent.
                Record::Agent(agent("alice", "Alice Martin", 50)),
            ])
            .await
            .expect("bob, alice again");
        // The key outlives its contact: a retry after closure still gets the same answer.
        journal
            .append(vec![closed(7, "completed", 60)])
            .await
            .expect("close 7");

        // A key already stored is refused, and that request stores nothing.
        let duplicate = journal.append(vec![accepted(8, 70, Some("order-7"))]).await;
        assert!(
            matches!(duplicate, Err(JournalError::Conflict(_))),
            "{duplicate:?}"
        );
        assert!(
            journal.is_healthy(),
            "a refused record is the caller's conflict, not a failing disk"
        );
    });
    assert_eq!(journal.lookup(8).expect("lookup"), None);
    journal.close().expect("close");

    let (journal, replay) = open(&dir);
    assert_eq!(
        replay.idempotency,
        vec![(
            "order-7".to_owned(),
            7,
            json!({"id": "7", "status": "queued"})
        )]
    );
    assert_eq!(
        replay.agents,
        vec![agent("alice", "Alice Martin", 50), agent("bob", "Bob", 40)]
    );
    assert_eq!(replay.next_contact_id, 8, "1 + the largest id stored (7)");
    assert_eq!(replay.open.len(), 1);
    journal.close().expect("close");
}

#[test]
fn concurrent_appends_share_commits_and_are_all_replayed() {
    const REQUESTS: u64 = 2_000;
    let dir = TempDir::new();
    let rt = runtime();
    let (journal, _) = open(&dir);

    let started = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (1..=REQUESTS)
            .map(|id| {
                let journal = journal.clone();
                tokio::spawn(async move {
                    journal
                        .append(vec![accepted(id, id, Some(&format!("key-{id}")))])
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task ran").expect("append committed");
        }
    });
    let elapsed = started.elapsed();
    let batches = journal.batches_committed();
    eprintln!(
        "group commit: {REQUESTS} requests in {batches} batches (mean {:.1} per batch), {:.1} ms, \
         {:.0} requests/s",
        REQUESTS as f64 / batches as f64,
        elapsed.as_secs_f64() * 1e3,
        REQUESTS as f64 / elapsed.as_secs_f64()
    );
    assert!(batches >= 1);
    assert!(
        batches * 20 <= REQUESTS,
        "{batches} batches for {REQUESTS} requests: group commit is not grouping"
    );
    journal.close().expect("close");

    let (journal, replay) = open(&dir);
    let ids: Vec<u64> = replay.open.iter().map(|open| open.contact.id).collect();
    assert_eq!(ids, (1..=REQUESTS).collect::<Vec<_>>());
    assert_eq!(replay.idempotency.len() as u64, REQUESTS);
    assert_eq!(replay.next_contact_id, REQUESTS + 1);
    journal.close().expect("close");
}

#[test]
fn a_full_disk_fails_the_append_and_the_journal_recovers_once_space_returns() {
    let dir = TempDir::new();
    let rt = runtime();
    let (journal, _) = open(&dir);
    let big = |id: u64| Record::Accepted {
        contact: ContactRecord {
            payload: json!({"body": "x".repeat(256 * 1024)}),
            ..contact(id, id)
        },
        idempotency_key: Some(format!("key-{id}")),
        response: json!({"id": id.to_string()}),
    };
    rt.block_on(async {
        journal
            .append(vec![accepted(1, 1, None)])
            .await
            .expect("first");
        // SQLite answers SQLITE_FULL, exactly as on a full disk, once the file may not grow.
        let pages: i64 = rusqlite::Connection::open(journal.path())
            .expect("second connection")
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .expect("page_count");
        journal
            .exec_on_writer(&format!("PRAGMA max_page_count = {pages}"))
            .await
            .expect("cap the file");

        let full = journal.append(vec![big(2)]).await;
        match &full {
            Err(JournalError::Write(message)) => assert!(message.contains("full"), "{message}"),
            other => panic!("expected a write error, got {other:?}"),
        }
        // Nowait records fail the same way, without blocking or panicking the writer.
        journal.append_nowait(vec![big(3)]).expect("queued");

        journal
            .exec_on_writer("PRAGMA max_page_count = 1073741823")
            .await
            .expect("space returns");
        journal
            .append(vec![big(4)])
            .await
            .expect("the writer recovered");
    });
    assert!(
        journal.lookup(2).expect("lookup").is_none(),
        "failed append left nothing"
    );
    assert!(
        journal.lookup(3).expect("lookup").is_none(),
        "failed nowait left nothing"
    );
    assert!(journal.lookup(4).expect("lookup").is_some());
    journal.close().expect("close");

    let (journal, replay) = open(&dir);
    let ids: Vec<u64> = replay.open.iter().map(|open| open.contact.id).collect();
    assert_eq!(ids, vec![1, 4]);
    journal.close().expect("close");
}

#[test]
fn a_database_locked_by_another_process_fails_the_append_until_released() {
    let dir = TempDir::new();
    let rt = runtime();
    let (journal, _) = Journal::open(
        dir.path(),
        JournalOptions {
            busy_timeout: Duration::from_millis(50),
            ..options()
        },
    )
    .expect("journal opens");
    let intruder = rusqlite::Connection::open(journal.path()).expect("second connection");
    rt.block_on(async {
        intruder.execute_batch("BEGIN IMMEDIATE").expect("lock");
        let locked = journal.append(vec![accepted(1, 1, Some("k1"))]).await;
        match &locked {
            Err(JournalError::Write(message)) => assert!(message.contains("lock"), "{message}"),
            other => panic!("expected a write error, got {other:?}"),
        }
        intruder.execute_batch("ROLLBACK").expect("unlock");
        // The same request, retried, succeeds: nothing of the failed one was kept.
        journal
            .append(vec![accepted(1, 1, Some("k1"))])
            .await
            .expect("retry");
    });
    assert!(journal.lookup(1).expect("lookup").is_some());
    journal.close().expect("close");
}

#[test]
fn a_read_only_database_file_is_refused_at_open() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let (journal, _) = open(&dir);
    let file = journal.path().to_owned();
    journal.close().expect("close");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    if std::fs::OpenOptions::new().write(true).open(&file).is_ok() {
        // Root ignores file modes, so there is nothing to refuse; the full-disk and lock tests
        // cover write failures for root.
        eprintln!("skipped: running as a user who can write read-only files");
        return;
    }
    let refused = Journal::open(dir.path(), options());
    match refused {
        Err(JournalError::Open { message, .. }) => {
            assert!(message.contains("read-only"), "{message}")
        }
        other => panic!("expected an open error, got {other:?}"),
    }
}

#[test]
fn close_flushes_queued_nowait_records_and_then_refuses() {
    let dir = TempDir::new();
    let (journal, _) = open(&dir);
    for id in 1..=500 {
        journal
            .append_nowait(vec![
                accepted(id, id, None),
                status(id, "offered", Some("alice"), id + 1),
            ])
            .expect("queued");
    }
    for id in 1..=100 {
        journal
            .append_nowait(vec![closed(id, "abandoned", 1_000)])
            .expect("queued");
    }
    let other = journal.clone();
    journal.close().expect("close flushes");
    assert!(matches!(
        other.append_nowait(vec![closed(1, "completed", 2)]),
        Err(JournalError::Closed)
    ));
    let rt = runtime();
    let late = rt.block_on(other.append(vec![accepted(900, 900, None)]));
    assert!(matches!(late, Err(JournalError::Closed)), "{late:?}");
    drop(other);

    let (journal, replay) = open(&dir);
    assert_eq!(replay.open.len(), 400);
    assert!(
        replay
            .open
            .iter()
            .all(|open| open.status == "offered" && open.contact.id > 100)
    );
    assert_eq!(replay.next_contact_id, 501);
    journal.close().expect("close");
}

#[test]
fn dropping_the_last_handle_flushes_too() {
    let dir = TempDir::new();
    let (journal, _) = open(&dir);
    journal
        .append_nowait(vec![accepted(1, 1, None)])
        .expect("queued");
    drop(journal);
    let (journal, replay) = open(&dir);
    assert_eq!(replay.open.len(), 1);
    journal.close().expect("close");
}

#[test]
fn records_replay_could_not_use_are_refused_before_queueing() {
    let dir = TempDir::new();
    let (journal, _) = open(&dir);
    let refused = [
        status(1, "dancing", None, 1),
        closed(1, "won", 1),
        accepted(u64::MAX, 1, None),
    ];
    for record in refused {
        let result = journal.append_nowait(vec![record.clone()]);
        assert!(
            matches!(result, Err(JournalError::Invalid(_))),
            "{record:?}: {result:?}"
        );
    }
    journal.close().expect("close");
}

#[test]
fn a_disposition_is_stored_with_the_completion_and_read_back_after_reopen() {
    let dir = TempDir::new();
    let rt = runtime();
    let (journal, _) = open(&dir);
    rt.block_on(async {
        journal
            .append(vec![
                accepted(1, 100, None),
                accepted(2, 110, None),
                accepted(3, 120, None),
            ])
            .await
            .expect("accepted");
        journal
            .append(vec![
                status(1, "assigned", Some("alice"), 200),
                completed_as(1, "callback", 300),
                status(2, "assigned", Some("bob"), 210),
                closed(2, "completed", 310),
                closed(3, "abandoned", 320),
            ])
            .await
            .expect("closures");
    });
    let disposition = |journal: &Journal, id| {
        journal
            .lookup(id)
            .expect("lookup")
            .expect("stored")
            .disposition
    };
    assert_eq!(disposition(&journal, 1).as_deref(), Some("callback"));
    assert_eq!(disposition(&journal, 2), None, "completed without a code");
    assert_eq!(disposition(&journal, 3), None, "abandoned");
    journal.close().expect("close");

    let (journal, replay) = open(&dir);
    assert!(replay.open.is_empty());
    let one = journal.lookup(1).expect("lookup").expect("stored");
    assert_eq!(
        (one.outcome.as_deref(), one.disposition.as_deref()),
        (Some("completed"), Some("callback"))
    );

    // Reopened by the customer, the contact is open again and its old closure's code goes
    // with that closure: the next completion brings its own.
    rt.block_on(async {
        journal
            .append(vec![Record::Reopened {
                contact: contact(1, 400),
            }])
            .await
            .expect("reopened");
    });
    assert_eq!(disposition(&journal, 1), None);
    rt.block_on(async {
        journal
            .append(vec![completed_as(1, "resolved", 500)])
            .await
            .expect("completed again");
    });
    assert_eq!(disposition(&journal, 1).as_deref(), Some("resolved"));
    journal.close().expect("close");
}

#[test]
fn a_version_2_file_opens_migrated_with_its_contacts_and_then_stores_dispositions() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path()).expect("dir");
    {
        // The file as a version-2 release left it: one contact completed, one still assigned.
        let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("create");
        schema::create_as_version_2(&conn).expect("version 2 schema");
        let insert = "INSERT INTO contacts
                (id, record, status, agent, arrived_at, updated_at, closed_at, outcome)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
        // As a version-2 release wrote them: the open one with its classification object.
        let record = |id| {
            let mut written = serde_json::to_value(contact(id, id * 100)).expect("JSON");
            if id == 2 {
                written["classification"] = serde_json::json!({
                    "queue_from": "rule",
                    "rules": {"matched": ["refunds"]},
                    "signals": {"language": {"code": "eng", "confidence": 1.0, "reliable": true}}
                });
            }
            written.to_string()
        };
        conn.execute(
            insert,
            rusqlite::params![
                1,
                record(1),
                "completed",
                "alice",
                100,
                150,
                150,
                "completed"
            ],
        )
        .expect("closed contact");
        conn.execute(
            insert,
            rusqlite::params![
                2,
                record(2),
                "assigned",
                "bob",
                200,
                250,
                None::<i64>,
                None::<&str>
            ],
        )
        .expect("open contact");
    }
    assert_eq!(schema_version(&dir), 2);

    let (journal, replay) = open(&dir);
    assert_eq!(schema_version(&dir), schema::SCHEMA_VERSION);
    let replayed = &replay.open;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(
        (replayed[0].status.as_str(), replayed[0].agent.as_deref()),
        ("assigned", Some("bob"))
    );
    let explained = replayed[0]
        .contact
        .classification
        .as_ref()
        .expect("the old row's classification is read");
    let explained: serde_json::Value = serde_json::from_str(explained.0.get()).expect("JSON text");
    assert_eq!(explained["rules"]["matched"][0], "refunds");
    assert_eq!(
        ContactRecord {
            classification: None,
            ..replayed[0].contact.clone()
        },
        contact(2, 200)
    );
    assert_eq!(replay.next_contact_id, 3);
    let old = journal.lookup(1).expect("lookup").expect("stored");
    assert_eq!(
        (
            old.outcome.as_deref(),
            old.agent.as_deref(),
            old.disposition
        ),
        (Some("completed"), Some("alice"), None),
        "closed before version 3: no code was ever kept"
    );

    let rt = runtime();
    rt.block_on(async {
        journal
            .append(vec![completed_as(2, "escalated", 300)])
            .await
            .expect("completed");
    });
    journal.close().expect("close");
    let (journal, _) = open(&dir);
    let migrated = journal.lookup(2).expect("lookup").expect("stored");
    assert_eq!(migrated.disposition.as_deref(), Some("escalated"));
    journal.close().expect("close");
}
