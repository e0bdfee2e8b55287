//! 批次与任务的持久化（表结构见 `storage::db` 的迁移 4 与 9）。只在状态转换时写库；进度只在内存里，
//! 几个实例共用库时另写进 `job_progress`（每秒一次，见 `publish_progress`）。

use crate::storage::sql::{in_list, now_ms, params, Db, DbError, Row};
use crate::types::{AspectRatio, AttemptInfo, ImageSize, JobImage, JobState, Phase};
use std::collections::BTreeMap;

/// 一个批次的参数（同批任务共用）。暂停与置顶会变，运行中以 `JobManager` 的任务表为准；
/// 这里的 `paused` 与 `priority` 是写库或读库那一刻的值。
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: String,
    pub name: String,
    /// 提交时的提示词（多条时一行一条，变量未展开）；每个任务展开后的提示词在 `JobRow::prompt`。
    pub prompt: String,
    /// 提交时的全部参考图；每个任务用的在 `JobRow::reference_ids`。
    pub reference_ids: Vec<String>,
    /// 本批的任务数。
    pub count: u32,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub model: String,
    pub created_at: String,
    /// 提交者（工作台会话或 IP 的指纹）；排队上限按它计。
    pub client: String,
    /// 提交者的账号（没有账号时为空）：批次与它的图记在这个账号名下。
    pub account: String,
    /// 局部修改的蒙版（上传的 PNG 的 id）：改的是第一张参考图。
    pub mask: Option<String>,
    pub paused: bool,
    /// 置顶的先后：越大越靠前，0 为没有置顶。
    pub priority: i64,
    /// 联网搜索。
    pub google_search: bool,
}

/// 任务里需要落盘的部分。
#[derive(Debug, Clone, PartialEq)]
pub struct JobRow {
    pub id: String,
    pub batch_id: String,
    pub index: u32,
    /// 展开后的提示词与这个任务自己的参考图、变量值。
    pub prompt: String,
    pub reference_ids: Vec<String>,
    pub variables: BTreeMap<String, String>,
    /// 用了变量时展开前的模板。
    pub template: Option<String>,
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
pub fn insert_batch(conn: &mut Db<'_>, batch: &Batch, jobs: &[JobRow]) -> Result<(), DbError> {
    conn.transaction(|tx| {
    tx.execute(
        "INSERT INTO batches (id, prompt, reference_ids, count, aspect_ratio, image_size, model, created_at, client, name, google_search, account, mask)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            batch.id,
            batch.prompt,
            json(&batch.reference_ids),
            batch.count,
            batch.aspect_ratio.as_str(),
            batch.image_size.as_str(),
            batch.model,
            batch.created_at,
            batch.client,
            batch.name,
            batch.google_search,
            batch.account,
            batch.mask
        ],
    )?;
        for job in jobs {
            tx.execute(
            "INSERT INTO jobs (id, batch_id, idx, state, run, created_at, prompt, reference_ids, variables, template)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                job.id,
                job.batch_id,
                job.index,
                job.state.as_str(),
                job.run,
                job.created_at,
                job.prompt,
                json(&job.reference_ids),
                json(&job.variables),
                job.template
            ])?;
        }
        Ok(())
    })
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("字符串的列表与映射总能序列化")
}

/// 写入任务的最新状态（开始、结束、取消、重试时调用），`me` 是本实例的 id。返回写进去了没有：
/// - 开始运行是一次认领：只有库里仍是“排队中”时才写得进去，并记下本实例——几个实例共用一个库、
///   都想跑同一个排队的任务时，只有一个成功；
/// - 其余状态只在库里还是同一次运行（`run` 相同）、并且库里的状态是能转到它的那几种时才写：
///   重试只从失败、取消、中断开始；取消只对排队中与生成中（哪个实例在跑都行，运行它的实例从库里看到后停下；
///   库里已是更新的一次运行时取消的是那一次，`run` 保持库里的）；
///   结果（完成、失败、保存失败）只由认领它的实例写，库里被标成中断之后晚到的结果也收下（图已付钱、已存进图库），
///   但不会盖掉取消与别处已经开始的重试。
pub fn update_job(conn: &mut Db<'_>, job: &JobRow, now: &str, me: &str) -> Result<bool, DbError> {
    let (started, finished) = match job.state {
        JobState::Running => (Some(now), None),
        JobState::Queued => (None, None),
        _ => (None, Some(now)),
    };
    let guard = match job.state {
        JobState::Running => "state = 'queued' AND run = CAST(?3 AS BIGINT) - 1",
        JobState::Queued => "run = ?3 AND state IN ('failed', 'cancelled', 'interrupted')",
        // 取消对库里当前的那次运行生效，哪怕它比本实例看到的新（别的实例刚认领或重试了它）：用户要停的是这张卡片。
        JobState::Cancelled => "run >= ?3 AND state IN ('queued', 'running')",
        JobState::Done | JobState::Failed | JobState::Unsaved | JobState::Interrupted => {
            "run = ?3 AND (owner IS NULL OR owner = ?11) AND state IN ('running', 'interrupted', 'unsaved')"
        }
    };
    let changed = conn.execute(
        &format!(
            "UPDATE jobs SET state = ?2, run = CASE WHEN ?2 = 'cancelled' THEN run ELSE ?3 END, upstream = ?4, error = ?5, attempts = ?6, image_id = ?7,
                started_at = COALESCE(?8, started_at), finished_at = ?9, spill = ?10,
                owner = CASE WHEN ?2 = 'running' THEN ?11 ELSE owner END
         WHERE id = ?1 AND {guard}"
        ),
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
            job.spill,
            me
        ],
    )?;
    Ok(changed == 1)
}

/// 从工作台移除（记录保留；图片另行处理）。
pub fn hide_job(conn: &mut Db<'_>, id: &str) -> Result<usize, DbError> {
    conn.execute("UPDATE jobs SET hidden = 1 WHERE id = ?1", params![id])
}

/// 本实例还活着（Unix 毫秒）；顺带清掉一天没报过平安的实例。
/// 时刻一律取数据库的钟（各实例的钟可能不准），见 `sql::now_ms`。
pub fn heartbeat(conn: &mut Db<'_>, me: &str) -> Result<(), DbError> {
    let now = now_ms(conn.dialect());
    conn.execute(
        &format!(
            "INSERT INTO instances (id, heartbeat_at) VALUES (?1, {now})
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at"
        ),
        params![me],
    )?;
    conn.execute(
        &format!("DELETE FROM instances WHERE heartbeat_at < {now} - 86400000"),
        params![],
    )?;
    Ok(())
}

/// 运行它的实例已经停了（最近 `lease_ms` 毫秒里没报过平安——按数据库的钟——或没有记下实例）的运行中任务标为“中断”，
/// 返回被标记的 id。本实例自己的不算。`lease_ms` 为 `None` 时别的实例一律算停了（SQLite：只有本实例在用）。
pub fn interrupt_orphans(
    conn: &mut Db<'_>,
    now: &str,
    me: &str,
    lease_ms: Option<i64>,
) -> Result<Vec<String>, DbError> {
    let alive = match lease_ms {
        Some(lease) => format!(
            "SELECT id FROM instances WHERE heartbeat_at >= {} - {lease}",
            now_ms(conn.dialect())
        ),
        None => "SELECT id FROM instances WHERE 1 = 0".into(),
    };
    let ids: Vec<String> = conn.query(
        &format!(
            "UPDATE jobs SET state = 'interrupted', finished_at = ?1,
                error = '服务器在生成过程中停止了，可以重试'
         WHERE state = 'running' AND (owner IS NULL OR (owner != ?2 AND owner NOT IN ({alive})))
         RETURNING id"
        ),
        params![now, me],
        |r| r.get(0),
    )?;
    // 停了的实例留下的进度不再显示（重试后的新一次运行从 0 开始）。
    if !ids.is_empty() {
        let (marks, values) = in_list(&ids);
        conn.execute(
            &format!("DELETE FROM job_progress WHERE job_id IN ({marks})"),
            &values,
        )?;
    }
    Ok(ids)
}

/// 本实例仍在生成、却被别的实例标成中断的任务收回为“生成中”：只在库里仍是这一次运行、仍是中断、
/// 记的仍是本实例时（还没有人重试它）。返回收回了没有。
pub fn reclaim(conn: &mut Db<'_>, id: &str, run: u32, me: &str) -> Result<bool, DbError> {
    let changed = conn.execute(
        "UPDATE jobs SET state = 'running', finished_at = NULL, error = NULL
         WHERE id = ?1 AND run = ?2 AND state = 'interrupted' AND owner = ?3",
        params![id, run, me],
    )?;
    Ok(changed == 1)
}

/// 读任务时的列（与 `job_of` 的下标一一对应）。任务自己的提示词与参考图为空时（以前的任务）用批次的。
const JOB_COLUMNS: &str =
    "SELECT j.id, j.batch_id, j.idx, j.state, j.run, j.upstream, j.error, j.attempts, j.image_id,
            j.created_at, b.prompt, b.reference_ids, b.count, b.aspect_ratio, b.image_size, b.model,
            b.created_at, i.width, i.height, b.client, j.spill,
            b.name, b.paused, b.priority, COALESCE(j.prompt, b.prompt),
            COALESCE(j.reference_ids, b.reference_ids), j.variables, i.model_text,
            j.template, COALESCE(i.favourite, 0), COALESCE(i.model, ''), b.google_search,
            i.size_note, COALESCE(i.sources, '[]'), b.account, b.mask
     FROM jobs j JOIN batches b ON b.id = j.batch_id
     LEFT JOIN images i ON i.id = j.image_id";

fn parse_json<T: serde::de::DeserializeOwned + Default>(text: Option<String>) -> T {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn job_of(r: &Row) -> Result<(Batch, JobRow), DbError> {
    let batch = Batch {
        id: r.get(1)?,
        name: r.get(21)?,
        prompt: r.get(10)?,
        reference_ids: parse_json(r.get(11)?),
        count: r.get(12)?,
        aspect_ratio: r.get::<String>(13)?.parse().unwrap_or_default(),
        image_size: r.get::<String>(14)?.parse().unwrap_or_default(),
        model: r.get(15)?,
        created_at: r.get(16)?,
        client: r.get(19)?,
        account: r.get(34)?,
        mask: r.get(35)?,
        paused: r.get(22)?,
        priority: r.get(23)?,
        google_search: r.get(31)?,
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
            model_text: r.get(27)?,
            favourite: r.get(29)?,
            model: r.get(30)?,
            size_note: r.get(32)?,
            sources: parse_json(r.get(33)?),
        }),
        _ => None,
    };
    let state = JobState::parse(&r.get::<String>(3)?).unwrap_or(JobState::Interrupted);
    Ok((
        batch,
        JobRow {
            id: r.get(0)?,
            batch_id: r.get(1)?,
            index: r.get(2)?,
            prompt: r.get(24)?,
            reference_ids: parse_json(r.get(25)?),
            variables: parse_json(r.get(26)?),
            template: r.get(28)?,
            state,
            run: r.get(4)?,
            upstream: r.get(5)?,
            error: r.get(6)?,
            attempts: serde_json::from_str(&r.get::<String>(7)?).unwrap_or_default(),
            image,
            created_at: r.get(9)?,
            spill: r.get(20)?,
        },
    ))
}

/// 启动时载入工作台要显示的任务：全部排队中的，加上最近的 `recent` 个（按创建时间先后返回）。
pub fn load_visible(conn: &mut Db<'_>, recent: u32) -> Result<Vec<(Batch, JobRow)>, DbError> {
    conn.query(
        &format!(
            "{JOB_COLUMNS}
         WHERE j.hidden = 0 AND (j.state = 'queued' OR j.id IN (
             SELECT id FROM jobs WHERE hidden = 0 ORDER BY created_at DESC, idx DESC LIMIT ?1))
         ORDER BY j.created_at, j.idx"
        ),
        params![recent],
        job_of,
    )
}

/// 一个批次的全部任务（按序号；从工作台移除了的除外）。不在内存里的旧批次（例如 `/v1` 的异步任务）从这里读。
pub fn load_batch(conn: &mut Db<'_>, batch_id: &str) -> Result<Vec<(Batch, JobRow)>, DbError> {
    conn.query(
        &format!("{JOB_COLUMNS} WHERE j.batch_id = ?1 AND j.hidden = 0 ORDER BY j.idx"),
        params![batch_id],
        job_of,
    )
}

/// `since` 之后建的、没被移除的任务（按创建先后；最多 2000 个）。
pub fn load_created_since(conn: &mut Db<'_>, since: &str) -> Result<Vec<(Batch, JobRow)>, DbError> {
    conn.query(
        &format!(
            "{JOB_COLUMNS} WHERE j.hidden = 0 AND j.created_at > ?1 ORDER BY j.created_at, j.idx LIMIT 2000"
        ),
        params![since],
        job_of,
    )
}

/// 这些批次各自暂停着没有。
pub fn paused_batches(conn: &mut Db<'_>, ids: &[String]) -> Result<Vec<(String, bool)>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (marks, values) = in_list(ids);
    conn.query(
        &format!("SELECT id, paused FROM batches WHERE id IN ({marks})"),
        &values,
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// 这些任务（按 id；没有的略过）。
pub fn load_jobs(conn: &mut Db<'_>, ids: &[String]) -> Result<Vec<(Batch, JobRow)>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (marks, values) = in_list(ids);
    conn.query(
        &format!("{JOB_COLUMNS} WHERE j.id IN ({marks})"),
        &values,
        job_of,
    )
}

/// 一个正在生成的任务此刻的进度：几个实例共用库时，运行它的实例每秒写一次，别的实例的页面据此显示。
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub job_id: String,
    pub percent: u8,
    pub phase: Option<Phase>,
    pub attempt: u32,
    pub elapsed_ms: u64,
    pub upstream: Option<String>,
}

/// 写入本实例正在生成的任务的进度，去掉 `finished`（本实例不再生成的）；顺带清掉一小时没更新的
/// （写它的实例停了）。
pub fn publish_progress(
    conn: &mut Db<'_>,
    running: &[Progress],
    finished: &[String],
) -> Result<(), DbError> {
    let now = now_ms(conn.dialect());
    for p in running {
        conn.execute(
            &format!(
                "INSERT INTO job_progress (job_id, percent, phase, attempt, elapsed_ms, upstream, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, {now})
                 ON CONFLICT (job_id) DO UPDATE SET percent = excluded.percent, phase = excluded.phase,
                   attempt = excluded.attempt, elapsed_ms = excluded.elapsed_ms,
                   upstream = excluded.upstream, updated_at = excluded.updated_at"
            ),
            params![
                p.job_id,
                p.percent,
                p.phase.map(phase_name),
                p.attempt,
                p.elapsed_ms,
                p.upstream
            ],
        )?;
    }
    if !finished.is_empty() {
        let (marks, values) = in_list(finished);
        conn.execute(
            &format!("DELETE FROM job_progress WHERE job_id IN ({marks})"),
            &values,
        )?;
    }
    conn.execute(
        &format!("DELETE FROM job_progress WHERE updated_at < {now} - 3600000"),
        params![],
    )?;
    Ok(())
}

/// 阶段在库里的名字：与 JSON 里的一样（`waiting` 之类）。
fn phase_name(phase: Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn phase_from_name(name: &str) -> Option<Phase> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// 这些任务在库里的进度（没有的略过）。
/// 用时算到此刻（写入之后又过了的时间也算上）。
pub fn load_progress(conn: &mut Db<'_>, ids: &[String]) -> Result<Vec<Progress>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms(conn.dialect());
    let (marks, values) = in_list(ids);
    conn.query(
        &format!(
            "SELECT job_id, percent, phase, attempt, elapsed_ms + ({now} - updated_at), upstream
             FROM job_progress WHERE job_id IN ({marks})"
        ),
        &values,
        |r| {
            Ok(Progress {
                job_id: r.get(0)?,
                percent: r.get(1)?,
                // 认不得的阶段名（更新版本的程序写的）当作没有。
                phase: r
                    .get::<Option<String>>(2)?
                    .and_then(|n| phase_from_name(&n)),
                attempt: r.get(3)?,
                elapsed_ms: r.get(4)?,
                upstream: r.get(5)?,
            })
        },
    )
}

/// 这些任务里库里的状态不是 `except` 之一的（没有的略过）。`except` 是程序里的常量，直接写进语句。
pub fn load_jobs_except(
    conn: &mut Db<'_>,
    ids: &[String],
    except: &[JobState],
) -> Result<Vec<(Batch, JobRow)>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let states = except
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let (marks, values) = in_list(ids);
    conn.query(
        &format!("{JOB_COLUMNS} WHERE j.id IN ({marks}) AND j.state NOT IN ({states})"),
        &values,
        job_of,
    )
}

/// 最近成功的耗时，按（模型, 分辨率）取平均，作为进度估计的起点。
pub fn recent_durations(conn: &mut Db<'_>) -> Result<Vec<(String, String, f64)>, DbError> {
    conn.query(
        "SELECT model, image_size, CAST(AVG(duration_ms) AS DOUBLE PRECISION) FROM (
             SELECT model, image_size, duration_ms FROM images
             WHERE duration_ms > 0 ORDER BY created_at DESC LIMIT 500) recent
         GROUP BY model, image_size",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// 暂停或继续一个批次。
pub fn set_paused(conn: &mut Db<'_>, batch_id: &str, paused: bool) -> Result<(), DbError> {
    conn.execute(
        "UPDATE batches SET paused = ?2 WHERE id = ?1",
        params![batch_id, paused],
    )?;
    Ok(())
}

/// 置顶一个批次：给它比所有批次都大的先后号，返回这个号。
pub fn raise_priority(conn: &mut Db<'_>, batch_id: &str) -> Result<i64, DbError> {
    let top: i64 = conn.query_one(
        "SELECT COALESCE(MAX(priority), 0) FROM batches",
        params![],
        |r| r.get(0),
    )?;
    conn.execute(
        "UPDATE batches SET priority = ?2 WHERE id = ?1",
        params![batch_id, top + 1],
    )?;
    Ok(top + 1)
}

/// 把整个批次从工作台移除（记录保留）。
pub fn hide_batch(conn: &mut Db<'_>, batch_id: &str) -> Result<(), DbError> {
    conn.transaction(|tx| {
        tx.execute(
            "UPDATE batches SET hidden = 1 WHERE id = ?1",
            params![batch_id],
        )?;
        tx.execute(
            "UPDATE jobs SET hidden = 1 WHERE batch_id = ?1",
            params![batch_id],
        )?;
        Ok(())
    })
}

/// 批次列表的一行：批次本身与它（没被移除的）每个任务的 id 与状态。
pub struct BatchRow {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub paused: bool,
    pub jobs: Vec<(String, JobState)>,
}

/// 一页批次，新的在前。`after` 是上一页最后一个的（created_at, id）。
/// `account` 不为空时只列这个账号的批次。
pub fn list_batches(
    conn: &mut Db<'_>,
    after: Option<(String, String)>,
    limit: u32,
    account: Option<String>,
) -> Result<Vec<BatchRow>, DbError> {
    let (created, id) = after.unwrap_or_else(|| ("\u{10FFFF}".into(), String::new()));
    let batches: Vec<BatchRow> = conn.query(
        "SELECT b.id, b.name, b.created_at, b.paused FROM batches b
         WHERE b.hidden = 0 AND (b.created_at < ?1 OR (b.created_at = ?1 AND b.id < ?2))
           AND (CAST(?4 AS TEXT) IS NULL OR b.account = ?4)
           AND EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND j.hidden = 0)
         ORDER BY b.created_at DESC, b.id DESC LIMIT ?3",
        params![created, id, limit, account],
        batch_row_of,
    )?;
    batches
        .into_iter()
        .map(|b| with_job_states(conn, b))
        .collect()
}

/// 批次所属的账号（没有这个批次时为空）。
pub fn batch_account(conn: &mut Db<'_>, batch_id: &str) -> Result<Option<String>, DbError> {
    conn.query_opt(
        "SELECT account FROM batches WHERE id = ?1",
        params![batch_id],
        |r| r.get(0),
    )
}

/// 任务所属的账号（它的批次的；没有这个任务时为空）。
pub fn job_account(conn: &mut Db<'_>, job_id: &str) -> Result<Option<String>, DbError> {
    conn.query_opt(
        "SELECT b.account FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE j.id = ?1",
        params![job_id],
        |r| r.get(0),
    )
}

/// 一个（没被移除的）批次。
pub fn batch_row(conn: &mut Db<'_>, batch_id: &str) -> Result<Option<BatchRow>, DbError> {
    let row = conn.query_opt(
        "SELECT id, name, created_at, paused FROM batches WHERE id = ?1 AND hidden = 0",
        params![batch_id],
        batch_row_of,
    )?;
    row.map(|b| with_job_states(conn, b)).transpose()
}

fn batch_row_of(r: &Row) -> Result<BatchRow, DbError> {
    Ok(BatchRow {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: r.get(2)?,
        paused: r.get(3)?,
        jobs: Vec::new(),
    })
}

fn with_job_states(conn: &mut Db<'_>, mut batch: BatchRow) -> Result<BatchRow, DbError> {
    batch.jobs = conn.query(
        "SELECT id, state FROM jobs WHERE batch_id = ?1 AND hidden = 0 ORDER BY idx",
        params![batch.id],
        |r| {
            let state: String = r.get(1)?;
            Ok((
                r.get(0)?,
                JobState::parse(&state).unwrap_or(JobState::Interrupted),
            ))
        },
    )?;
    Ok(batch)
}

/// 批次在不在（没被移除）。
pub fn batch_exists(conn: &mut Db<'_>, batch_id: &str) -> Result<bool, DbError> {
    Ok(conn
        .query_opt(
            "SELECT 1 FROM batches WHERE id = ?1 AND hidden = 0",
            params![batch_id],
            |_| Ok(()),
        )?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sql::DbError;

    fn job(state: JobState, run: u32) -> JobRow {
        JobRow {
            id: "j1".into(),
            batch_id: "b1".into(),
            index: 0,
            prompt: "山".into(),
            reference_ids: Vec::new(),
            variables: BTreeMap::new(),
            template: None,
            state,
            run,
            upstream: None,
            error: None,
            attempts: Vec::new(),
            image: None,
            created_at: "2026-11-30T00:00:00.000Z".into(),
            spill: None,
        }
    }

    fn state_and_run(c: &mut Db<'_>) -> Result<(String, u32), DbError> {
        c.query_one(
            "SELECT state, run FROM jobs WHERE id = 'j1'",
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
    }

    /// 实例 A 还以为任务在排队（run 0），B 已经认领了它（run 1）：A 上的取消对 B 的那次运行生效，run 保持 B 的；
    /// B 晚到的结果不盖掉取消；A 拿着旧的 run 重试被拒绝（A 随后按库里的重新显示）。
    #[test]
    fn a_cancel_applies_to_the_run_that_is_current_in_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::storage::db::connect(&dir.path().join("t.db").to_string_lossy()).unwrap();
        let batch = Batch {
            id: "b1".into(),
            name: String::new(),
            prompt: "山".into(),
            reference_ids: Vec::new(),
            count: 1,
            aspect_ratio: AspectRatio::default(),
            image_size: ImageSize::default(),
            model: String::new(),
            created_at: "2026-11-30T00:00:00.000Z".into(),
            client: "c".into(),
            account: String::new(),
            mask: None,
            paused: false,
            priority: 0,
            google_search: false,
        };
        let now = "2026-11-30T00:00:01.000Z";
        db.run(|c| -> Result<(), DbError> {
            insert_batch(c, &batch, &[job(JobState::Queued, 0)])?;
            assert!(
                update_job(c, &job(JobState::Running, 1), now, "b")?,
                "B 认领到"
            );
            assert!(
                !update_job(c, &job(JobState::Running, 1), now, "a")?,
                "A 认领不到"
            );
            assert!(update_job(c, &job(JobState::Cancelled, 0), now, "a")?);
            assert_eq!(state_and_run(c)?, ("cancelled".into(), 1));
            assert!(!update_job(c, &job(JobState::Done, 1), now, "b")?);
            assert!(!update_job(c, &job(JobState::Queued, 0), now, "a")?);
            assert_eq!(state_and_run(c)?, ("cancelled".into(), 1));
            assert!(
                update_job(c, &job(JobState::Queued, 1), now, "a")?,
                "按库里的 run 重试"
            );
            Ok(())
        })
        .unwrap();
    }
}
