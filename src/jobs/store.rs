//! 批次与任务的持久化（表结构见 `storage::db` 的迁移 4）。只在状态转换时写库，进度只在内存里。

use crate::types::{AspectRatio, AttemptInfo, ImageSize, JobImage, JobState};
use rusqlite::{params, Connection};

/// 一个批次的参数（同批任务共用）。
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: String,
    pub prompt: String,
    pub reference_ids: Vec<String>,
    pub count: u32,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub model: String,
    pub created_at: String,
    /// 提交者（工作台会话或 IP 的指纹）；排队上限按它计。
    pub client: String,
}

/// 任务里需要落盘的部分。
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub batch_id: String,
    pub index: u32,
    pub state: JobState,
    pub run: u32,
    pub upstream: Option<String>,
    pub error: Option<String>,
    pub attempts: Vec<AttemptInfo>,
    pub image: Option<JobImage>,
    pub created_at: String,
    /// 生成了却没能存进图库时，图在暂存区里的 id（“重新保存”用）。
    pub spill: Option<String>,
}

/// 在一个事务里写入批次与它的全部任务：要么都在，要么都不在。
pub fn insert_batch(conn: &mut Connection, batch: &Batch, jobs: &[JobRow]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute(
        "INSERT INTO batches (id, prompt, reference_ids, count, aspect_ratio, image_size, model, created_at, client)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            batch.id,
            batch.prompt,
            serde_json::to_string(&batch.reference_ids).unwrap_or_else(|_| "[]".into()),
            batch.count,
            batch.aspect_ratio.as_str(),
            batch.image_size.as_str(),
            batch.model,
            batch.created_at,
            batch.client
        ],
    )?;
    for job in jobs {
        tx.execute(
            "INSERT INTO jobs (id, batch_id, idx, state, run, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![job.id, job.batch_id, job.index, job.state.as_str(), job.run, job.created_at],
        )?;
    }
    tx.commit()
}

/// 写入任务的最新状态（开始、结束、取消、重试时调用）。
pub fn update_job(conn: &Connection, job: &JobRow, now: &str) -> rusqlite::Result<()> {
    let (started, finished) = match job.state {
        JobState::Running => (Some(now), None),
        JobState::Queued => (None, None),
        _ => (None, Some(now)),
    };
    conn.execute(
        "UPDATE jobs SET state = ?2, run = ?3, upstream = ?4, error = ?5, attempts = ?6, image_id = ?7,
                started_at = COALESCE(?8, started_at), finished_at = ?9, spill = ?10
         WHERE id = ?1",
        params![
            job.id,
            job.state.as_str(),
            job.run,
            job.upstream,
            job.error,
            serde_json::to_string(&job.attempts).unwrap_or_else(|_| "[]".into()),
            job.image.as_ref().map(|i| i.id.clone()),
            started,
            finished,
            job.spill
        ],
    )?;
    Ok(())
}

/// 从工作台移除（记录保留；图片另行处理）。
pub fn hide_job(conn: &Connection, id: &str) -> rusqlite::Result<usize> {
    conn.execute("UPDATE jobs SET hidden = 1 WHERE id = ?1", [id])
}

/// 启动时：上次运行中的任务标记为“中断”，返回被标记的 id。
pub fn mark_running_interrupted(conn: &Connection, now: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT id FROM jobs WHERE state = 'running'")?;
    let ids: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    conn.execute(
        "UPDATE jobs SET state = 'interrupted', finished_at = ?1,
                error = '服务器在生成过程中停止了，可以重试' WHERE state = 'running'",
        [now],
    )?;
    Ok(ids)
}

/// 读任务时的列（与 `job_of` 的下标一一对应）。
const JOB_COLUMNS: &str =
    "SELECT j.id, j.batch_id, j.idx, j.state, j.run, j.upstream, j.error, j.attempts, j.image_id,
            j.created_at, b.prompt, b.reference_ids, b.count, b.aspect_ratio, b.image_size, b.model,
            b.created_at, i.width, i.height, b.client, j.spill
     FROM jobs j JOIN batches b ON b.id = j.batch_id
     LEFT JOIN images i ON i.id = j.image_id";

fn job_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Batch, JobRow)> {
    let batch = Batch {
        id: r.get(1)?,
        prompt: r.get(10)?,
        reference_ids: serde_json::from_str(&r.get::<_, String>(11)?).unwrap_or_default(),
        count: r.get(12)?,
        aspect_ratio: r.get::<_, String>(13)?.parse().unwrap_or_default(),
        image_size: r.get::<_, String>(14)?.parse().unwrap_or_default(),
        model: r.get(15)?,
        created_at: r.get(16)?,
        client: r.get(19)?,
    };
    let image_id: Option<String> = r.get(8)?;
    let size: (Option<u32>, Option<u32>) = (r.get(17)?, r.get(18)?);
    let image = match (image_id, size) {
        (Some(id), (Some(width), Some(height))) => Some(JobImage {
            url: format!("/files/{id}"),
            thumb_url: format!("/files/{id}/thumb"),
            id,
            width,
            height,
        }),
        _ => None,
    };
    let state = JobState::parse(&r.get::<_, String>(3)?).unwrap_or(JobState::Interrupted);
    Ok((
        batch,
        JobRow {
            id: r.get(0)?,
            batch_id: r.get(1)?,
            index: r.get(2)?,
            state,
            run: r.get(4)?,
            upstream: r.get(5)?,
            error: r.get(6)?,
            attempts: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or_default(),
            image,
            created_at: r.get(9)?,
            spill: r.get(20)?,
        },
    ))
}

/// 启动时载入工作台要显示的任务：全部排队中的，加上最近的 `recent` 个（按创建时间先后返回）。
pub fn load_visible(conn: &Connection, recent: u32) -> rusqlite::Result<Vec<(Batch, JobRow)>> {
    let mut stmt = conn.prepare(&format!(
        "{JOB_COLUMNS}
         WHERE j.hidden = 0 AND (j.state = 'queued' OR j.id IN (
             SELECT id FROM jobs WHERE hidden = 0 ORDER BY created_at DESC, idx DESC LIMIT ?1))
         ORDER BY j.created_at, j.idx"
    ))?;
    let rows = stmt.query_map([recent], job_of)?;
    rows.collect()
}

/// 一个批次的全部任务（按序号）。不在内存里的旧批次（例如 `/v1` 的异步任务）从这里读。
pub fn load_batch(conn: &Connection, batch_id: &str) -> rusqlite::Result<Vec<(Batch, JobRow)>> {
    let mut stmt = conn.prepare(&format!(
        "{JOB_COLUMNS} WHERE j.batch_id = ?1 ORDER BY j.idx"
    ))?;
    let rows = stmt.query_map([batch_id], job_of)?;
    rows.collect()
}

/// 最近成功的耗时，按（模型, 分辨率）取平均，作为进度估计的起点。
pub fn recent_durations(conn: &Connection) -> rusqlite::Result<Vec<(String, String, f64)>> {
    let mut stmt = conn.prepare(
        "SELECT model, image_size, AVG(duration_ms) FROM (
             SELECT model, image_size, duration_ms FROM images
             WHERE duration_ms > 0 ORDER BY created_at DESC LIMIT 500)
         GROUP BY model, image_size",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}
