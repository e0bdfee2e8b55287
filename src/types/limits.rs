//! 请求的上限与校验：工作台、`/api/generate_image` 与 `/v1` 共用这一处。
//!
//! 数字只写在这里；浏览器端（张数输入框的上限）与服务端（拒绝越界的请求）读的是同一组常量。
//! 与配置有关的上限（参考图的字节数 `storage.max_upload_mb` 等）在配置里，不在这里。

/// 提示词最多几个字符。
pub const MAX_PROMPT_CHARS: usize = 8000;
/// 一次提交（或 `/v1` 的 `n`）最多几张。
pub const MAX_COUNT: u32 = 16;
/// 一个请求最多几张参考图（一次上传最多几个文件也是它）。
pub const MAX_REFERENCES: usize = 16;
/// `/v1` 的 JSON 请求体（生成、对话）最多多少字节：对话里的 data URL 参考图也算在内。
/// 表单（multipart）的请求体另按参考图的张数与 `storage.max_upload_mb` 计。
pub const MAX_JSON_BODY_BYTES: usize = 32 << 20;
/// multipart 表单里一个文字字段（提示词、参数）最多多少字节。
pub const MAX_FORM_TEXT_BYTES: usize = MAX_PROMPT_CHARS * 4 + 1024;
/// 批量的变量：一次提交最多几个变量。
pub const MAX_VARIABLES: usize = 20;
/// 一次提交最多按 id 引用提示词库里几条（每条至少一张，与 `limits.max_batch_jobs` 的默认值相同）。
pub const MAX_LIBRARY_PROMPTS: usize = 256;
/// 批量的变量：一个变量最多几个值（`limits.max_batch_jobs` 的上限也是它）。
pub const MAX_VARIABLE_VALUES: usize = 10_000;
/// 批量的变量：一个值最多几个字符（填进去之后整条提示词仍受 [`MAX_PROMPT_CHARS`] 限制）。
pub const MAX_VARIABLE_VALUE_CHARS: usize = MAX_PROMPT_CHARS;

/// 请求从哪条路来：决定错误说明里用哪个字段名（`/v1` 用 OpenAI 的字段名）。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// 工作台与 `/api/*`。
    Studio,
    /// OpenAI 兼容接口 `/v1`。
    OpenAi,
}

/// 请求不合规的原因（说明为中文）。
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("{}不能为空", prompt_field(*.0))]
    EmptyPrompt(Surface),
    #[error("{}太长了，最多 {MAX_PROMPT_CHARS} 个字符（收到 {got} 个）", prompt_field(*surface))]
    PromptTooLong { surface: Surface, got: usize },
    #[error("{}", count_message(*surface, *got))]
    Count { surface: Surface, got: u32 },
    #[error("参考图最多 {MAX_REFERENCES} 张，收到 {got} 张")]
    TooManyReferences { got: usize },
}

fn prompt_field(surface: Surface) -> &'static str {
    match surface {
        Surface::Studio => "提示词",
        Surface::OpenAi => "prompt ",
    }
}

fn count_message(surface: Surface, got: u32) -> String {
    match surface {
        Surface::Studio => format!("一次可以生成 1 到 {MAX_COUNT} 张，收到 {got}"),
        Surface::OpenAi => format!("n 必须在 1 到 {MAX_COUNT} 之间，收到 {got}"),
    }
}

/// 校验一个生成请求的提示词、张数与参考图数。通过时返回去掉首尾空白的提示词。
pub fn validate_request(
    surface: Surface,
    prompt: &str,
    count: u32,
    references: usize,
) -> Result<String, RequestError> {
    let prompt = prompt.trim();
    if prompt.is_empty() {
        return Err(RequestError::EmptyPrompt(surface));
    }
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(RequestError::PromptTooLong {
            surface,
            got: chars,
        });
    }
    if !(1..=MAX_COUNT).contains(&count) {
        return Err(RequestError::Count {
            surface,
            got: count,
        });
    }
    if references > MAX_REFERENCES {
        return Err(RequestError::TooManyReferences { got: references });
    }
    Ok(prompt.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_limit_is_enforced_with_a_chinese_reason() {
        let ok = validate_request(Surface::Studio, "  灯塔  ", 16, MAX_REFERENCES);
        assert_eq!(ok.as_deref(), Ok("灯塔"));
        let err = |s, p: &str, n, r| validate_request(s, p, n, r).unwrap_err().to_string();
        assert_eq!(err(Surface::Studio, " ", 1, 0), "提示词不能为空");
        assert_eq!(err(Surface::OpenAi, "", 1, 0), "prompt 不能为空");
        let long = "字".repeat(MAX_PROMPT_CHARS + 1);
        assert!(err(Surface::OpenAi, &long, 1, 0).contains("最多 8000 个字符"));
        assert_eq!(
            err(Surface::Studio, "p", 17, 0),
            "一次可以生成 1 到 16 张，收到 17"
        );
        assert!(err(Surface::OpenAi, "p", 0, 0).starts_with("n 必须在 1 到 16 之间"));
        assert!(err(Surface::Studio, "p", 1, 17).contains("参考图最多 16 张"));
    }
}
