//! One ordered worker pool: work over a list of items with at most N at a
//! time, inside the run's deadline, results handed out in the items' order
//! as soon as every earlier item is done (so a run over thousands of items
//! holds few results at once). Items the deadline reaches before they
//! start get the caller's "not started" result.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::cli::Context;

/// Run `work` on each of `items`, at most `concurrency` at a time. `ready`
/// is called under a lock, one call at a time, with the next results in
/// the items' order; every item gets exactly one result, `not_started`'s
/// for those the deadline came before. Threads have small stacks: a few
/// dozen of them for thousands of items.
pub fn run_in_order<T, R>(
    items: &[T],
    ctx: &Context,
    concurrency: usize,
    work: &(dyn Fn(&T) -> R + Sync),
    not_started: &(dyn Fn(&T) -> R + Sync),
    ready: &(dyn Fn(Vec<R>) + Sync),
) where
    T: Sync,
    R: Send,
{
    struct Ordered<R> {
        results: Vec<Option<R>>,
        next: usize,
    }
    let total = items.len();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let ordered = Mutex::new(Ordered {
        results: (0..total).map(|_| None).collect(),
        next: 0,
    });
    let workers = concurrency.clamp(1, total.max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let worker = || loop {
                if ctx.remaining().is_zero() {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let result = work(item);
                {
                    let mut o = ordered.lock().unwrap_or_else(|p| p.into_inner());
                    o.results[i] = Some(result);
                    let mut chunk = Vec::new();
                    while o.next < total {
                        let at = o.next;
                        match o.results[at].take() {
                            Some(r) => chunk.push(r),
                            None => break,
                        }
                        o.next += 1;
                    }
                    if !chunk.is_empty() {
                        // Still under the lock: chunks go out in order.
                        ready(chunk);
                    }
                }
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                ctx.progress(n, total);
            };
            if workers == 1 {
                // One worker: this thread is it (a one-shot check of one
                // thing starts no thread for it).
                worker();
                break;
            }
            let spawned = std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn_scoped(scope, worker);
            if spawned.is_err() {
                break;
            }
        }
    });
    let mut o = ordered.into_inner().unwrap_or_else(|p| p.into_inner());
    let start = o.next;
    let rest: Vec<R> = o
        .results
        .drain(start..)
        .zip(&items[start..])
        .map(|(r, item)| r.unwrap_or_else(|| not_started(item)))
        .collect();
    if !rest.is_empty() {
        ready(rest);
    }
}

/// [`run_in_order`] collecting every result, in the items' order.
pub fn run_all<T, R>(
    items: &[T],
    ctx: &Context,
    concurrency: usize,
    work: &(dyn Fn(&T) -> R + Sync),
    not_started: &(dyn Fn(&T) -> R + Sync),
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let out = Mutex::new(Vec::with_capacity(items.len()));
    run_in_order(items, ctx, concurrency, work, not_started, &|chunk| {
        out.lock().unwrap_or_else(|p| p.into_inner()).extend(chunk);
    });
    out.into_inner().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn results_come_out_in_order_however_the_work_finishes() {
        let items: Vec<u64> = (0..50).collect();
        let ctx = Context::new(Duration::from_secs(20));
        let chunks = Mutex::new(Vec::new());
        run_in_order(
            &items,
            &ctx,
            8,
            // Later items finish first.
            &|i: &u64| {
                std::thread::sleep(Duration::from_micros(50 * (50 - i)));
                *i
            },
            &|_| u64::MAX,
            &|chunk| chunks.lock().expect("lock").push(chunk),
        );
        let chunks = chunks.into_inner().expect("lock");
        let flat: Vec<u64> = chunks.iter().flatten().copied().collect();
        assert_eq!(flat, items);
    }

    #[test]
    fn no_more_than_the_concurrency_run_at_once() {
        let items: Vec<u32> = (0..40).collect();
        let ctx = Context::new(Duration::from_secs(20));
        let running = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let out = run_all(
            &items,
            &ctx,
            3,
            &|i: &u32| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
                running.fetch_sub(1, Ordering::SeqCst);
                *i
            },
            &|_| u32::MAX,
        );
        assert_eq!(out, items);
        assert!(most.load(Ordering::SeqCst) <= 3);
    }

    #[test]
    fn items_the_deadline_reaches_first_are_not_started() {
        let items: Vec<u32> = (0..10).collect();
        let ctx = Context::new(Duration::ZERO);
        let out = run_all(&items, &ctx, 4, &|i: &u32| *i, &|_| 999);
        assert_eq!(out, vec![999; 10]);
        let empty: Vec<u32> = Vec::new();
        assert!(run_all(&empty, &ctx, 4, &|i: &u32| *i, &|_| 0).is_empty());
    }
}
