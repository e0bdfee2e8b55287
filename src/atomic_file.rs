//! 原子写文件：图片、参考图、缩略图与配置文件都经这里写盘。
//!
//! 同目录临时文件（`.partial-` 开头）→ 写入 →（fsync）→ 改名 →（fsync 目录）。
//! 任何时刻崩溃，目标路径上要么是旧文件、要么是完整的新文件，绝不会是半个；
//! 最多留下一个 `.partial-` 临时文件（存储在启动时清理它们）。

use std::io::Write;
use std::path::Path;

/// 临时文件名前缀。
pub const PARTIAL_PREFIX: &str = ".partial-";

/// 写盘后要不要等数据落到磁盘上。
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync 文件与目录：断电也不丢、不留半个文件（参考图、配置文件）。
    Durable,
    /// fsync 文件后改名；目录的 fsync 由调用方统一做（原图：组提交里一次 fsync 多张）。
    FileSynced,
    /// 随时可以重新生成的文件（缩略图）：只保证进程崩溃时不留半个文件。
    Rebuildable,
}

/// 把 `data` 原子地写到 `path`，文件权限为 `mode`（例如图片 0o644，含密钥的配置 0o600）。
/// 上级目录不存在时先创建。
pub fn write(path: &Path, data: &[u8], durability: Durability, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(PARTIAL_PREFIX)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    if durability != Durability::Rebuildable {
        tmp.as_file().sync_all()?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if durability == Durability::Durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// fsync 一个目录，让其中的改名落盘。
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_whole_files_with_the_given_mode_and_no_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secret.toml");
        write(&path, b"one", Durability::Durable, 0o600).unwrap();
        write(&path, b"two", Durability::Durable, 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["secret.toml"], "不留临时文件");
    }
}
