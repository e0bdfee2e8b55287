//! 一个批次的打包内容（`GET /files/zip?batch=<批次 id>`，HTTP 在 `crate::files`）：全部完成的图，
//! 外加一份清单 `manifest.csv`（序号、提示词、变量值、参考图、状态、原因、文件名——失败的任务也在清单里，只是没有文件）。
//! `batch_archive` 逐个任务取 zip 里的图（`image_entry`）与清单的一行（`manifest_record`）；
//! 清单的表头在 `new_manifest`，收尾（加 BOM）在 `manifest_entry`。

use super::store::{self, Batch, JobRow};
use super::JobManager;
use crate::error::ApiError;
use crate::storage::archive::Entry;
use crate::storage::Storage;
use crate::types::JobState;

/// 文件名里的提示词最多几个字。
const NAME_CHARS: usize = 20;

/// 批次里一张图在 zip 里的名字：`{序号}-{提示词前 20 字}.{扩展名}`；文件系统不允许的字符换成 `_`。
fn entry_name(index: u32, prompt: &str, ext: &str) -> String {
    let excerpt: String = prompt
        .chars()
        .filter(|c| !c.is_control())
        .take(NAME_CHARS)
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '_',
            c => c,
        })
        .collect();
    let excerpt = excerpt.trim().trim_matches('.');
    if excerpt.is_empty() {
        format!("{index}.{ext}")
    } else {
        format!("{index}-{excerpt}.{ext}")
    }
}

impl JobManager {
    /// 一个批次要打包的项：完成的图与清单。批次不存在时 404。
    pub async fn batch_archive(
        &self,
        storage: &Storage,
        batch_id: &str,
    ) -> Result<Vec<Entry>, ApiError> {
        let id = batch_id.to_string();
        let mut rows: Vec<(Batch, JobRow)> = storage
            .with_db(move |c| Ok(store::load_batch(c, &id)?))
            .await?;
        if rows.is_empty() {
            return Err(ApiError::NotFound);
        }
        // 还在内存里的任务以内存为准（状态是异步写库的）。
        {
            let table = self.table();
            for (_, row) in rows.iter_mut() {
                if let Some(job) = table.jobs.get(&row.id) {
                    *row = job.row.clone();
                }
            }
        }
        let mut entries = Vec::new();
        let mut manifest = new_manifest()?;
        for (_, row) in &rows {
            let file_name = match image_entry(storage, row).await? {
                Some((name, entry)) => {
                    entries.push(entry);
                    name
                }
                None => String::new(),
            };
            manifest
                .write_record(manifest_record(storage, row, &file_name).await?)
                .map_err(csv_error)?;
        }
        entries.push(manifest_entry(manifest)?);
        Ok(entries)
    }
}

/// 完成了、图也还在（没进回收站，文件也在）的任务：它在 zip 里的文件名与那一项；别的任务没有。
async fn image_entry(storage: &Storage, row: &JobRow) -> Result<Option<(String, Entry)>, ApiError> {
    let (JobState::Done, Some(image)) = (row.state, &row.image) else {
        return Ok(None);
    };
    match storage.get(image.id.clone()).await? {
        Some(record) if record.deleted_at.is_none() && storage.has_file(&record).await => {
            let ext = record.rel_path.rsplit('.').next().unwrap_or("png");
            let file_name = entry_name(row.index, &row.prompt, ext);
            let entry = Entry::File {
                name: file_name.clone(),
                root: record.root,
                rel_path: record.rel_path,
            };
            Ok(Some((file_name, entry)))
        }
        _ => Ok(None),
    }
}

/// 新的清单，已写好表头。CRLF 与打包时加的 BOM：Windows 上的 Excel 直接打开不乱码、不乱行。
fn new_manifest() -> Result<csv::Writer<Vec<u8>>, ApiError> {
    let mut manifest = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let header = [
        "序号",
        "提示词",
        "变量值",
        "参考图",
        "状态",
        "原因",
        "文件名",
    ];
    manifest.write_record(header).map_err(csv_error)?;
    Ok(manifest)
}

/// 清单里一个任务的那一行；`file_name` 为空表示 zip 里没有它的图。
async fn manifest_record(
    storage: &Storage,
    row: &JobRow,
    file_name: &str,
) -> Result<[String; 7], ApiError> {
    let variables = row
        .variables
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let mut references = Vec::new();
    for id in &row.reference_ids {
        references.push(reference_label(storage, id).await?);
    }
    let state = if row.state == JobState::Done && file_name.is_empty() {
        "图片已删除"
    } else {
        row.state.label()
    };
    Ok([
        row.index.to_string(),
        cell(&row.prompt),
        cell(&variables),
        cell(&references.join("; ")),
        state.to_string(),
        cell(&row.error.clone().unwrap_or_default()),
        cell(file_name),
    ])
}

/// 写完的清单作为 zip 里的 `manifest.csv`，带 UTF-8 BOM：Excel 打开时中文不乱码。
fn manifest_entry(manifest: csv::Writer<Vec<u8>>) -> Result<Entry, ApiError> {
    let mut data = "\u{feff}".as_bytes().to_vec();
    data.extend(
        manifest
            .into_inner()
            .map_err(|e| csv_error(e.into_error()))?,
    );
    Ok(Entry::Bytes {
        name: "manifest.csv".into(),
        data,
    })
}

/// 清单里的参考图：上传时的文件名，没有就用 id。
async fn reference_label(storage: &Storage, id: &str) -> Result<String, ApiError> {
    if id.len() == 64 {
        if let Some(upload) = storage.get_upload(id.to_string()).await? {
            if let Some(name) = upload.filename {
                return Ok(name);
            }
        }
    }
    Ok(id.to_string())
}

/// 清单里用户写的文字：以 `=`、`+`、`-`、`@`、制表符或回车开头的，电子表格会当作公式执行（CSV 注入），
/// 前面加一个单引号，表格里显示为文字（OWASP 的做法）。
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

fn csv_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("写清单失败：{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_safe_and_short() {
        assert_eq!(entry_name(3, "油画的春天", "png"), "3-油画的春天.png");
        assert_eq!(
            entry_name(12, "a/b\\c:d*e?f\"g 一二三四五六七八九十一二三", "jpg"),
            "12-a_b_c_d_e_f_g 一二三四五六.jpg"
        );
        assert_eq!(entry_name(1, "...", "png"), "1.png");
    }

    #[test]
    fn cells_that_a_spreadsheet_would_run_are_quoted() {
        assert_eq!(
            cell("=HYPERLINK(\"http://evil\")"),
            "'=HYPERLINK(\"http://evil\")"
        );
        for formula in ["+1", "-1+2", "@SUM(A1)", "\tx", "\rx"] {
            assert!(cell(formula).starts_with('\''), "{formula}");
        }
        assert_eq!(cell("油画的春天"), "油画的春天");
        assert_eq!(cell(""), "");
    }
}
