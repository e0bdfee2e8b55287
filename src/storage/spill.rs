//! 暂存区：上游已经生成（已经付了钱）、却没能存进图库的图（例如磁盘满了、目录坏了），先放在这里，
//! 不丢：`/v1` 的调用方照样拿到图，工作台的卡片显示“保存失败”并可“重新保存”。
//!
//! 放在存储根下的 `.spill/`（写不进去时退到系统临时目录），文件名是随机 id；总量有上限（`MAX_BYTES`），
//! 超过 24 小时的在启动时与每小时清理一次。

use super::StorageError;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// 暂存区的总大小上限。
const MAX_BYTES: u64 = 1 << 30;
/// 暂存的图保留多久。
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// 目录名（在存储根下）。
const DIR: &str = ".spill";

/// 暂存区可能在的目录：存储根下的 `.spill/`，以及系统临时目录下的备用目录。
fn dirs(root: &Path) -> [PathBuf; 2] {
    [
        root.join(DIR),
        std::env::temp_dir().join("drafting-factory-spill"),
    ]
}

fn used_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// 把图暂存起来，返回它的 id（文件名）。阻塞调用。
pub fn put(root: &Path, data: &[u8]) -> Result<String, StorageError> {
    let id = format!("{}.bin", uuid::Uuid::new_v4().simple());
    let mut last_error = None;
    for dir in dirs(root) {
        if used_bytes(&dir) + data.len() as u64 > MAX_BYTES {
            last_error = Some(std::io::Error::other("暂存区已满"));
            continue;
        }
        match crate::atomic_file::write(
            &dir.join(&id),
            data,
            crate::atomic_file::Durability::Durable,
            0o600,
        ) {
            Ok(()) => return Ok(id),
            Err(e) => last_error = Some(e),
        }
    }
    Err(StorageError::Io {
        context: "暂存生成的图失败".into(),
        source: last_error.unwrap_or_else(|| std::io::Error::other("没有可用的暂存目录")),
    })
}

/// 取回暂存的图。阻塞调用。
pub fn get(root: &Path, id: &str) -> Result<Vec<u8>, StorageError> {
    let valid =
        id.len() == 36 && id.ends_with(".bin") && id[..32].bytes().all(|b| b.is_ascii_hexdigit());
    let not_found = || StorageError::Io {
        context: format!("暂存的图 {id} 不在了（超过 24 小时会被清理）"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    };
    if !valid {
        return Err(not_found());
    }
    dirs(root)
        .iter()
        .find_map(|dir| std::fs::read(dir.join(id)).ok())
        .ok_or_else(not_found)
}

/// 删掉一张暂存的图（重新保存成功后）。
pub fn remove(root: &Path, id: &str) {
    for dir in dirs(root) {
        let _ = std::fs::remove_file(dir.join(id));
    }
}

/// 清理超过 `KEEP` 的暂存文件，返回删掉的个数。
pub fn clean(root: &Path) -> usize {
    let now = SystemTime::now();
    let mut removed = 0;
    for dir in dirs(root) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > KEEP);
            if old && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_bytes_come_back_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let id = put(dir.path(), b"paid image").unwrap();
        assert!(dir.path().join(DIR).join(&id).is_file());
        assert_eq!(get(dir.path(), &id).unwrap(), b"paid image");
        assert_eq!(clean(dir.path()), 0, "新的不清理");
        remove(dir.path(), &id);
        assert!(get(dir.path(), &id).is_err());
        assert!(get(dir.path(), "../../etc/passwd").is_err());
    }
}
