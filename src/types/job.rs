//! 工作台的任务：提交的请求、一张卡片此刻的样子（`/ws` 推送的就是它）与同步生成接口的结果。

use super::attempt::AttemptInfo;
use super::shape::{AspectRatio, ImageSize};
use serde::{Deserialize, Serialize};

/// 工作台一次“生成”的输入。字段都可由任意 HTTP 客户端以 JSON 提交；拼错的字段名是 400（而不是悄悄当作没给，
/// 例如把 `references` 写成 `reference_ids` 会生成一张不带参考图、却照样付费的图）。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    pub prompt: String,
    #[serde(default)]
    pub aspect_ratio: AspectRatio,
    #[serde(default)]
    pub image_size: ImageSize,
    /// 参考图的 id（图库里的图片 id 或上传的 id）；非空即为图生图。
    #[serde(default)]
    pub references: Vec<String>,
    /// 模型；空为上游配置的默认模型。
    #[serde(default)]
    pub model: String,
    /// 联网搜索。
    #[serde(default)]
    pub google_search: bool,
}

/// 已保存到服务器的一张图像。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedImage {
    pub id: String,
    pub url: String,
    pub width: u32,
    pub height: u32,
    pub prompt: String,
    /// 模型随图返回的文字（若有）。
    pub note: Option<String>,
    /// 实际提供这张图的上游名称。
    pub upstream: String,
    /// 每次上游尝试的记录。
    pub attempts: Vec<AttemptInfo>,
    /// 实际生成它的模型。
    #[serde(default)]
    pub model: String,
    /// 实际尺寸与请求的不符时的说明。
    #[serde(default)]
    pub size_note: Option<String>,
    /// 联网搜索时引用的来源（标题, 网址）。
    #[serde(default)]
    pub sources: Vec<(String, String)>,
}

/// 生成中的阶段。
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// 正在把请求（含参考图）发给上游。
    Sending,
    /// 请求已发出，等上游生成。
    Waiting,
    /// 正在接收上游的响应。
    Receiving,
    /// 正在写入磁盘。
    Saving,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Self::Sending => "发送",
            Self::Waiting => "等待上游",
            Self::Receiving => "接收",
            Self::Saving => "保存",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
    /// 服务器在它运行时停止了（重启后显示，可重试）。
    Interrupted,
    /// 上游生成了（已经付了钱），却没能存进图库（例如磁盘满了）：图在暂存区里，可以“重新保存”。
    Unsaved,
}

impl JobState {
    /// 同一次运行里状态只会往前走：排队中 → 生成中 → 终态。
    fn step(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Running => 1,
            _ => 2,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "排队中",
            Self::Running => "生成中",
            Self::Done => "已完成",
            Self::Failed => "失败",
            Self::Cancelled => "已取消",
            Self::Interrupted => "中断",
            Self::Unsaved => "保存失败",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Interrupted => "interrupted",
            Self::Unsaved => "unsaved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Done,
            Self::Failed,
            Self::Cancelled,
            Self::Interrupted,
            Self::Unsaved,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// 还在排队或运行（可取消）。
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Running)
    }

    /// 可以重试（重新生成）。保存失败的不算：图已经有了，该“重新保存”，重新生成要再付一次钱。
    pub fn can_retry(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled | Self::Interrupted)
    }

    /// 可以重新保存（图在暂存区里）。
    pub fn can_resave(self) -> bool {
        self == Self::Unsaved
    }
}

/// 任务产出的图片。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobImage {
    pub id: String,
    pub url: String,
    pub thumb_url: String,
    pub width: u32,
    pub height: u32,
    /// 模型随图说的话（卡片上的“模型说明”）。
    #[serde(default)]
    pub model_text: Option<String>,
    /// 收藏了（☆）。
    #[serde(default)]
    pub favourite: bool,
    /// 实际生成它的模型（请求的是停用了的旧 id、或改用了备选模型时与任务的 `model` 不同）。
    #[serde(default)]
    pub model: String,
    /// 实际尺寸与请求的不符时的说明（卡片上显示“尺寸不符”）。
    #[serde(default)]
    pub size_note: Option<String>,
    /// 联网搜索时引用的来源（标题, 网址）。
    #[serde(default)]
    pub sources: Vec<(String, String)>,
}

/// 一张卡片（一个任务）此刻的样子。`/ws` 推送的就是它。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub job_id: String,
    pub batch_id: String,
    /// 批次的名称；批次是否暂停着（暂停的批次里排队的任务不开始）。
    pub batch_name: String,
    pub batch_paused: bool,
    /// 在本批中的序号（从 1 起）与本批任务数。
    pub index: u32,
    pub count: u32,
    /// 展开后的提示词，与它用的变量值（变量名 → 值）。
    pub prompt: String,
    pub variables: std::collections::BTreeMap<String, String>,
    /// 用了变量时展开前的模板（“保存为提示词”用）。
    #[serde(default)]
    pub template: Option<String>,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
    pub model: String,
    pub reference_ids: Vec<String>,
    pub state: JobState,
    pub phase: Option<Phase>,
    /// 0–100，只增不减；保存完成才到 100。
    pub percent: u8,
    /// 第几次运行（重试一次加一）。
    pub run: u32,
    /// 本次运行里第几次上游尝试。
    pub attempt: u32,
    pub upstream: Option<String>,
    /// 本次运行已用时间。
    pub elapsed_ms: u64,
    /// 预计还需多久；没有依据或已超出平常用时时为空。
    pub eta_ms: Option<u64>,
    /// 当前阶段（发送/接收）已传输与总字节数。
    pub bytes_done: u64,
    pub bytes_total: Option<u64>,
    /// 失败原因（中文）。
    pub error: Option<String>,
    /// 本次运行的上游尝试记录。
    pub attempts: Vec<AttemptInfo>,
    pub image: Option<JobImage>,
    pub created_at: String,
    /// 服务器上最近一次变化的时刻（Unix 毫秒）；浏览器用它算推送延迟。
    pub changed_at_ms: u64,
    /// 提交者的账号（没有账号时为空）：登录了账号的人只收到自己的卡片。
    #[serde(default)]
    pub owner: String,
    /// 局部修改的蒙版（上传的 PNG 的 id）；改的是 `reference_ids` 的第一张。
    #[serde(default)]
    pub mask: Option<String>,
}

impl JobView {
    /// 这份视图是否不比 `other` 旧。同一任务的视图可能从两条路到达（提交的 HTTP 响应与 `/ws` 推送），
    /// 先后不定：按（第几次运行、状态的先后、服务器上的变化时刻）比较，旧的不能覆盖新的。
    pub fn is_not_older_than(&self, other: &JobView) -> bool {
        (self.run, self.state.step(), self.changed_at_ms)
            >= (other.run, other.state.step(), other.changed_at_ms)
    }
}

/// `/ws` 上的消息。连接后先发一次 `snapshot`，之后是单个任务的更新与移除，以及排队顺序的变化。
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JobMessage {
    Snapshot {
        jobs: Vec<JobView>,
        #[serde(default)]
        queue: Vec<String>,
    },
    Job(Box<JobView>),
    Removed {
        job_id: String,
    },
    /// 将要开始的排队任务，先开始的在前（暂停的批次不在其中；最多 `QUEUE_SHOWN` 个）。
    Queue {
        job_ids: Vec<String>,
    },
}

impl JobMessage {
    /// 浏览器端解析 `/ws` 的一条消息，结果与 `serde_json::from_str::<JobMessage>` 相同（有测试核对）。
    ///
    /// 为什么不直接用派生的解析：`tag = "type"` 的枚举要先把整条消息缓冲成 serde 的中间值，
    /// 再为每种载荷（`JobView`、`JobImage`、尝试记录……）另生成一套从中间值解析的代码，WASM 里约 60 KB。
    /// 这里先只读 `type`，再把整条文本直接解析成那一种消息，载荷的解析代码与页面属性共用一份。
    pub fn from_text(text: &str) -> Result<JobMessage, leptos::serde_json::Error> {
        use leptos::serde_json::from_str;
        use serde::de::Error as _;
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct Snapshot {
            jobs: Vec<JobView>,
            #[serde(default)]
            queue: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Removed {
            job_id: String,
        }
        #[derive(Deserialize)]
        struct Queue {
            job_ids: Vec<String>,
        }
        let Kind { kind } = from_str(text)?;
        Ok(match kind.as_str() {
            "snapshot" => {
                let Snapshot { jobs, queue } = from_str(text)?;
                JobMessage::Snapshot { jobs, queue }
            }
            "job" => JobMessage::Job(Box::new(from_str(text)?)),
            "removed" => JobMessage::Removed {
                job_id: from_str::<Removed>(text)?.job_id,
            },
            "queue" => JobMessage::Queue {
                job_ids: from_str::<Queue>(text)?.job_ids,
            },
            other => {
                return Err(leptos::serde_json::Error::custom(format!(
                    "未知的消息类型：{other}"
                )))
            }
        })
    }
}

/// `/ws` 推送的排队顺序最多列出几个任务（更靠后的卡片只显示“排队中”）。
pub const QUEUE_SHOWN: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    fn view(run: u32, state: JobState, changed_at_ms: u64) -> JobView {
        JobView {
            job_id: "j".into(),
            batch_id: "b".into(),
            batch_name: "b".into(),
            batch_paused: false,
            owner: String::new(),
            mask: None,
            template: None,
            index: 1,
            count: 1,
            prompt: "p".into(),
            variables: Default::default(),
            aspect_ratio: AspectRatio::Square,
            image_size: ImageSize::K1,
            model: String::new(),
            reference_ids: Vec::new(),
            state,
            phase: None,
            percent: 0,
            run,
            attempt: 0,
            upstream: None,
            elapsed_ms: 0,
            eta_ms: None,
            bytes_done: 0,
            bytes_total: None,
            error: None,
            attempts: Vec::new(),
            image: None,
            created_at: String::new(),
            changed_at_ms,
        }
    }

    #[test]
    fn a_late_submit_response_does_not_undo_pushed_progress() {
        let queued = view(1, JobState::Queued, 100);
        // 同一毫秒里就失败了：推送先到，提交的响应（排队中）后到。
        let failed = view(1, JobState::Failed, 100);
        assert!(failed.is_not_older_than(&queued));
        assert!(!queued.is_not_older_than(&failed));
        // 进度更新按时刻前进；重试后的新一轮排队覆盖上一轮的终态。
        assert!(view(1, JobState::Running, 120).is_not_older_than(&view(
            1,
            JobState::Running,
            110
        )));
        assert!(!view(1, JobState::Running, 110).is_not_older_than(&view(
            1,
            JobState::Running,
            120
        )));
        assert!(view(2, JobState::Queued, 130).is_not_older_than(&failed));
    }

    #[test]
    fn from_text_reads_every_message_like_the_derived_decoder() {
        let mut done = view(2, JobState::Done, 7);
        done.image = Some(JobImage {
            id: "img".into(),
            url: "/files/img".into(),
            thumb_url: "/files/img/thumb".into(),
            width: 1024,
            height: 768,
            model_text: Some("说明".into()),
            favourite: true,
            model: "m".into(),
            size_note: None,
            sources: vec![("标题".into(), "https://example.com".into())],
        });
        let messages = [
            JobMessage::Snapshot {
                jobs: vec![view(1, JobState::Queued, 1), done.clone()],
                queue: vec!["j".into()],
            },
            JobMessage::Job(Box::new(done)),
            JobMessage::Removed { job_id: "j".into() },
            JobMessage::Queue {
                job_ids: vec!["a".into(), "b".into()],
            },
        ];
        for message in messages {
            let text = leptos::serde_json::to_string(&message).unwrap();
            let derived: JobMessage = leptos::serde_json::from_str(&text).unwrap();
            assert_eq!(JobMessage::from_text(&text).unwrap(), derived);
            assert_eq!(derived, message);
        }
        // 旧服务器的快照没有 queue：与派生的解析一样取空。
        let old = r#"{"type":"snapshot","jobs":[]}"#;
        assert_eq!(
            JobMessage::from_text(old).unwrap(),
            leptos::serde_json::from_str::<JobMessage>(old).unwrap()
        );
        for bad in [
            r#"{"type":"nope"}"#,
            r#"{"jobs":[]}"#,
            r#"{"type":"removed"}"#,
            "不是 JSON",
        ] {
            assert!(JobMessage::from_text(bad).is_err(), "{bad}");
        }
    }
}
