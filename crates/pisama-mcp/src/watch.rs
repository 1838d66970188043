//! Change notifications for `.brain/`, including edits made outside the server (an editor, `git
//! pull`, the CLI). Every `watch_interval`, and right after one of our own writes, the watcher
//! compares a cheap fingerprint of the brain (file names, sizes and modification times). When it
//! changed it sends `notifications/resources/list_changed` if the set of records changed,
//! `notifications/resources/updated` for each subscribed resource whose content changed, and
//! `notifications/prompts/list_changed` if the approved prompt records changed.
//!
//! Polling rather than OS file events: no extra dependency, it works on network and container
//! file systems, and a stat of each record file per second is cheap next to what a brain holds.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::SystemTime;

use rmcp::model::ResourceUpdatedNotificationParam;

use pisama_brain::Brain;

use crate::server::{PisamaServer, blocking};
use crate::{prompts, resources};

/// What the watcher compares between ticks.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fingerprint {
    files: Vec<(String, u64, Option<SystemTime>)>,
}

fn fingerprint(dir: &Path) -> Fingerprint {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') {
                continue; // .index/, .lock, .gitignore
            }
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_dir() {
                stack.push(e.path());
            } else if name.ends_with(".md") || name.ends_with(".toml") {
                files.push((
                    e.path().to_string_lossy().into_owned(),
                    meta.len(),
                    meta.modified().ok(),
                ));
            }
        }
    }
    files.sort();
    Fingerprint { files }
}

/// The ids of the records listed as resources, and the approved prompt records.
fn listing(brain: &Brain) -> (BTreeSet<String>, Vec<String>) {
    let ids = brain
        .scan()
        .map(|cat| {
            cat.entries
                .iter()
                .filter(|e| {
                    !matches!(
                        e.record.review,
                        pisama_brain::Review::Archived | pisama_brain::Review::Rejected
                    )
                })
                .map(|e| format!("{}:{}", e.record.id, e.record.title))
                .collect()
        })
        .unwrap_or_default();
    (ids, prompts::record_prompt_names(brain))
}

pub(crate) fn spawn(server: PisamaServer) {
    tokio::spawn(async move {
        let Some(peer) = server.session.peer.get().cloned() else {
            return;
        };
        let root = server.options().root.clone();
        let dir = root.join(pisama_brain::store::BRAIN_DIR);
        let interval = server.options().watch_interval;
        let state = {
            let root = root.clone();
            let dir = dir.clone();
            blocking(move || {
                let l = Brain::open(&root).map(|b| listing(&b)).unwrap_or_default();
                (fingerprint(&dir), l)
            })
            .await
        };
        let Ok((mut last, mut last_listing)) = state else {
            return;
        };
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = server.session.poke.notified() => {}
            }
            if peer.is_transport_closed() {
                return;
            }
            let d = dir.clone();
            let Ok(now) = blocking(move || fingerprint(&d)).await else {
                return;
            };
            if now == last {
                continue;
            }
            last = now;
            let r = root.clone();
            let Ok(listing_now) =
                blocking(move || Brain::open(&r).map(|b| listing(&b)).unwrap_or_default()).await
            else {
                return;
            };
            if listing_now.0 != last_listing.0 {
                tracing::debug!("brain records added or removed");
                let _ = peer.notify_resource_list_changed().await;
            }
            if listing_now.1 != last_listing.1 {
                tracing::debug!("approved prompt records changed");
                let _ = peer.notify_prompt_list_changed().await;
            }
            last_listing = listing_now;
            let subscribed: Vec<(String, u64)> = server
                .session
                .subscriptions
                .lock()
                .map(|s| s.iter().map(|(k, v)| (k.clone(), *v)).collect())
                .unwrap_or_default();
            for (uri, seen) in subscribed {
                let me = server.clone();
                let u = uri.clone();
                let Ok(fresh) =
                    blocking(move || resources::read(&me, &u).map(|c| resources::hash_of(&c)))
                        .await
                else {
                    return;
                };
                // A resource that no longer reads (a removed record) is a change too.
                let fresh = fresh.unwrap_or(0);
                if fresh != seen {
                    if let Ok(mut subs) = server.session.subscriptions.lock()
                        && let Some(slot) = subs.get_mut(&uri)
                    {
                        *slot = fresh;
                    }
                    let _ = peer
                        .notify_resource_updated(ResourceUpdatedNotificationParam::new(uri))
                        .await;
                }
            }
        }
    });
}
