//! 落盘的下限：本网关每张图都持久化——同目录临时文件 → 写入 → fsync → 改名 → 目录 fsync → SQLite 提交
//! （WAL，synchronous=FULL；见 src/storage/images.rs）。a 节在同一次运行里、同一块盘上（基准的工作目录）单独量这几步，
//! 把网关开销写成“下限 + x”：性能目标是相对这块盘的比值，而不是猜的数。
//!
//! 并发 1：每次一个完整的序列。并发 16：16 个线程各自写文件、fsync、改名，目录 fsync 与 SQLite 事务按组提交——
//! 与 `Storage::commit_grouped` 同样的做法：拿到数据库锁的线程替此刻排队的全部记录做一次目录 fsync、一个事务。
//! 所以这是本网关的持久化方式在这块盘上能做到的最好结果（不含 HTTP、解析、编码与上游）。

use crate::load::Limit;
use hdrhistogram::Histogram;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// 一个并发下的结果。
pub struct FloorRow {
    pub concurrency: usize,
    /// 每次写的文件大小（与 a 节本网关存的图一样大）。
    pub bytes: usize,
    pub ops: u64,
    pub elapsed: Duration,
    /// 每次（写文件到记录提交）的延迟，微秒。
    pub latency_us: Histogram<u64>,
}

impl FloorRow {
    pub fn ms(&self, q: f64) -> f64 {
        self.latency_us.value_at_quantile(q / 100.0) as f64 / 1000.0
    }

    pub fn per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// a 节本网关存的图有多大：由“经本网关”每个响应的线上字节（`b64_json`，base64 是原图的 4/3，外加几百字节的 JSON）
/// 倒推；量不出来时按 4 KB。
pub fn image_bytes(overhead: &[crate::cases::Row]) -> usize {
    overhead
        .iter()
        .find(|r| r.target == "经本网关" && r.result.ok > 0)
        .map(|r| (r.result.wire_bytes / r.result.ok).saturating_sub(300) as usize * 3 / 4)
        .filter(|&b| b >= 512)
        .unwrap_or(4096)
}

/// 在 `dir` 下依次量各个并发（阻塞的文件与数据库操作放在阻塞线程里）。
pub async fn run(
    dir: &Path,
    bytes: usize,
    concurrencies: &[usize],
    limit: Limit,
) -> anyhow::Result<Vec<FloorRow>> {
    eprintln!("== a. 落盘下限（写 {bytes} 字节 + fsync + 改名 + 目录 fsync + SQLite 提交）");
    let mut rows = Vec::new();
    for &c in concurrencies {
        let dir = dir.join(format!("c{c}"));
        let row = tokio::task::spawn_blocking(move || measure(&dir, c, bytes, limit)).await??;
        eprintln!(
            "  并发 {c}：{} 次，p50 {:.2} ms，p99 {:.2} ms，{:.0} 次/秒",
            row.ops,
            row.ms(50.0),
            row.ms(99.0),
            row.per_sec()
        );
        rows.push(row);
    }
    Ok(rows)
}

/// 等待组提交的一条记录。
struct Pending {
    name: String,
    done: mpsc::Sender<Result<(), String>>,
}

struct Shared {
    images: PathBuf,
    db: Mutex<rusqlite::Connection>,
    pending: Mutex<Vec<Pending>>,
    bytes: usize,
}

fn measure(dir: &Path, concurrency: usize, bytes: usize, limit: Limit) -> anyhow::Result<FloorRow> {
    let images = dir.join("images");
    std::fs::create_dir_all(&images)?;
    let conn = rusqlite::Connection::open(dir.join("floor.db"))?;
    // 与服务器的元数据库一样（src/storage/db.rs 的 `open`）。
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS images (
            id TEXT PRIMARY KEY, rel_path TEXT NOT NULL, bytes INTEGER NOT NULL,
            prompt TEXT NOT NULL, created_at TEXT NOT NULL, attempts TEXT NOT NULL)",
    )?;
    let shared = Shared {
        images,
        db: Mutex::new(conn),
        pending: Mutex::new(Vec::new()),
        bytes,
    };
    let data: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
    let issued = AtomicU64::new(0);
    let started = Instant::now();
    let histograms: Vec<anyhow::Result<Histogram<u64>>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..concurrency)
            .map(|worker| {
                let (shared, data, issued) = (&shared, &data, &issued);
                s.spawn(move || -> anyhow::Result<Histogram<u64>> {
                    let mut hist = Histogram::<u64>::new(3).expect("3 位有效数字的直方图");
                    loop {
                        let n = issued.fetch_add(1, Ordering::Relaxed);
                        if n >= limit.requests || started.elapsed() >= limit.duration {
                            return Ok(hist);
                        }
                        let t0 = Instant::now();
                        durable_write(shared, data, &format!("{worker}-{n}.png"))?;
                        hist.saturating_record(t0.elapsed().as_micros() as u64);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("落盘下限的线程没有崩溃"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut latency_us = Histogram::<u64>::new(3).expect("3 位有效数字的直方图");
    for h in histograms {
        latency_us
            .add(h?)
            .map_err(|e| anyhow::anyhow!("合并直方图：{e:?}"))?;
    }
    let ops = latency_us.len();
    let _ = std::fs::remove_dir_all(dir);
    anyhow::ensure!(ops > 0, "落盘下限一次也没有做成（并发 {concurrency}）");
    Ok(FloorRow {
        concurrency,
        bytes,
        ops,
        elapsed,
        latency_us,
    })
}

/// 一张图的持久化：临时文件 → 写入 → fsync → 改名，然后组提交（目录 fsync + SQLite 事务）。
fn durable_write(shared: &Shared, data: &[u8], name: &str) -> anyhow::Result<()> {
    let tmp = shared.images.join(format!(".partial-{name}"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, shared.images.join(name))?;
    let (done, result) = mpsc::channel();
    shared.pending.lock().expect("锁未被毒化").push(Pending {
        name: name.to_string(),
        done,
    });
    {
        let mut conn = shared.db.lock().expect("锁未被毒化");
        let batch = std::mem::take(&mut *shared.pending.lock().expect("锁未被毒化"));
        if !batch.is_empty() {
            let committed = commit(&mut conn, shared, &batch).map_err(|e| e.to_string());
            for p in batch {
                let _ = p.done.send(committed.clone());
            }
        }
    }
    result
        .recv()
        .map_err(|_| anyhow::anyhow!("提交记录的线程意外退出"))?
        .map_err(|e| anyhow::anyhow!("提交记录失败：{e}"))
}

/// 一批记录：目录 fsync 一次（让这批改名落盘），再一个事务写入（一次 WAL fsync）。
fn commit(
    conn: &mut rusqlite::Connection,
    shared: &Shared,
    batch: &[Pending],
) -> anyhow::Result<()> {
    std::fs::File::open(&shared.images)?.sync_all()?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO images (id, rel_path, bytes, prompt, created_at, attempts)
             VALUES (?1, ?2, ?3, 'bench', '2026-01-01T00:00:00.000Z', '[]')",
        )?;
        for p in batch {
            insert.execute(rusqlite::params![
                p.name,
                format!("images/{}", p.name),
                shared.bytes as i64
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_exactly_the_requested_number_of_durable_writes_also_when_grouped() {
        let dir = tempfile::tempdir().unwrap();
        let limit = Limit {
            requests: 40,
            duration: Duration::from_secs(30),
        };
        for concurrency in [1, 4] {
            let row = measure(
                &dir.path().join(format!("c{concurrency}")),
                concurrency,
                4096,
                limit,
            )
            .unwrap();
            assert_eq!(row.ops, 40, "并发 {concurrency}");
            assert!(row.per_sec() > 0.0 && row.ms(50.0) > 0.0);
        }
    }
}
