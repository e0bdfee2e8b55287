//! `drafting-factory check [--repair]`：核对记录与文件，`--repair` 时修复——什么都不悄悄删掉。
//!
//! 找的问题：
//! - 缺失：有记录、文件不在；
//! - 不完整：文件在、大小与记录的不同（写到一半、复制中断、磁盘满）；
//! - 临时文件：`.partial-` 开头的半写文件（服务启动时也会清掉它们，并在日志里说）；
//! - 孤儿：`images/` 下没有任何记录指向的文件。
//!
//! 修复：不完整的、临时的与孤儿文件**挪到**存储根的 `quarantine/<时刻>/` 下（原来的相对路径不变，要找回就挪回去）；
//! 缺失与不完整的记录标上 `file_problem`（缺失 / 不完整），图库详情里看得到，记录本身不删。
//! 已经标过的记录不再算作新问题。

use super::blobs::Blobs;
use super::sql::{params, Db};
use super::{audit, db, StorageError};
use crate::atomic_file::{Durability, PARTIAL_PREFIX};

/// 核对的结果。
#[derive(Debug, Default)]
pub struct Findings {
    /// 文件不在的图片 id（还没标过的）。
    pub missing: Vec<String>,
    /// 文件不完整的图片：（id，根，相对路径）。
    pub damaged: Vec<(String, String, String)>,
    /// 半写的临时文件：（根，相对路径）。
    pub partials: Vec<(String, String)>,
    /// 没有记录的文件：（根，相对路径）。
    pub orphans: Vec<(String, String)>,
    /// 以前已标过问题的记录数。
    pub marked_before: usize,
}

impl Findings {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.damaged.is_empty()
            && self.partials.is_empty()
            && self.orphans.is_empty()
    }
}

impl std::fmt::Display for Findings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "缺文件的记录 {} 条、不完整的文件 {} 个、半写的临时文件 {} 个、没有记录的文件 {} 个（以前已标记 {} 条）",
            self.missing.len(),
            self.damaged.len(),
            self.partials.len(),
            self.orphans.len(),
            self.marked_before
        )?;
        let shown = self
            .missing
            .iter()
            .map(|id| format!("缺失 {id}"))
            .chain(
                self.damaged
                    .iter()
                    .map(|(id, _, rel)| format!("不完整 {id}（{rel}）")),
            )
            .chain(
                self.partials
                    .iter()
                    .map(|(r, rel)| format!("临时 {r}/{rel}")),
            )
            .chain(
                self.orphans
                    .iter()
                    .map(|(r, rel)| format!("孤儿 {r}/{rel}")),
            );
        for line in shown {
            write!(f, "\n  {line}")?;
        }
        Ok(())
    }
}

/// 标记用的文字。
pub const MISSING: &str = "缺失";
pub const DAMAGED: &str = "不完整";

/// 核对（只读）。`root` 是当前的存储根；记录里出现过的旧根也核对。阻塞调用。
pub fn check(conn: &mut Db<'_>, blobs: &Blobs, root: &str) -> Result<Findings, StorageError> {
    let found = audit(conn, blobs, root)?;
    let marked: std::collections::HashSet<String> = conn
        .query(
            "SELECT id FROM images WHERE file_problem IS NOT NULL",
            params![],
            |row| row.get(0),
        )?
        .into_iter()
        .collect();
    let is_marked = |id: &str| marked.contains(id);
    let mut findings = Findings {
        marked_before: marked.len(),
        missing: found
            .missing_files
            .into_iter()
            .filter(|id| !is_marked(id))
            .collect(),
        ..Default::default()
    };
    for (r, rel) in found.orphan_files {
        let name = rel.rsplit('/').next().unwrap_or(&rel);
        if name.starts_with(PARTIAL_PREFIX) {
            findings.partials.push((r, rel));
        } else {
            findings.orphans.push((r, rel));
        }
    }
    // 在的文件比大小（对象存储时要把每个读一遍：这是离线的核对）。
    let sizes: Vec<(String, String, String, i64)> = conn.query(
        "SELECT id, root, rel_path, bytes FROM images WHERE file_problem IS NULL",
        params![],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
    )?;
    for (id, r, rel, bytes) in sizes {
        if findings.missing.contains(&id) || !blobs.exists(&r, &rel) {
            continue;
        }
        let len = match Blobs::local_path(&r, &rel) {
            Some(path) => std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
            None => blobs.read(&r, &rel)?.len() as u64,
        };
        if len != bytes as u64 {
            findings.damaged.push((id, r, rel));
        }
    }
    Ok(findings)
}

/// 修复的结果。
#[derive(Debug, Default)]
pub struct Repaired {
    /// 挪开的文件（根/quarantine/时刻/相对路径）。
    pub moved: Vec<String>,
    /// 标上问题的记录数。
    pub marked: usize,
}

/// 按核对结果修复：挪开文件、标记记录。`stamp` 是 quarantine 下的目录名（时刻）。阻塞调用。
pub fn repair(
    conn: &mut Db<'_>,
    blobs: &Blobs,
    findings: &Findings,
    stamp: &str,
) -> Result<Repaired, StorageError> {
    let mut repaired = Repaired::default();
    let aside = findings
        .damaged
        .iter()
        .map(|(_, r, rel)| (r, rel))
        .chain(findings.partials.iter().map(|(r, rel)| (r, rel)))
        .chain(findings.orphans.iter().map(|(r, rel)| (r, rel)));
    for (r, rel) in aside {
        let to = format!("quarantine/{stamp}/{rel}");
        move_aside(blobs, r, rel, &to)?;
        repaired.moved.push(format!("{r}/{to}"));
    }
    let marks = findings
        .missing
        .iter()
        .map(|id| (id, MISSING))
        .chain(findings.damaged.iter().map(|(id, _, _)| (id, DAMAGED)));
    for (id, problem) in marks {
        repaired.marked += conn.execute(
            "UPDATE images SET file_problem = ?1 WHERE id = ?2",
            params![problem, id.as_str()],
        )?;
        // 缩略图由原图派生：原图不完整时它多半也不对，一起挪开（不在就算了）。
        if problem == DAMAGED {
            if let Some(record) = db::get(conn, id)? {
                let thumb = record.thumb_rel_path_for();
                if blobs.exists(&record.root, &thumb) {
                    move_aside(
                        blobs,
                        &record.root,
                        &thumb,
                        &format!("quarantine/{stamp}/{thumb}"),
                    )?;
                }
            }
        }
    }
    Ok(repaired)
}

/// 把一个文件挪到同一根下的 `to`：本地目录是改名，对象存储是先写新的再删旧的。
fn move_aside(blobs: &Blobs, root: &str, rel: &str, to: &str) -> Result<(), StorageError> {
    if let (Some(from), Some(dest)) = (Blobs::local_path(root, rel), Blobs::local_path(root, to)) {
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::Io {
                context: format!("无法创建 {}", dir.display()),
                source,
            })?;
        }
        return std::fs::rename(&from, &dest).map_err(|source| StorageError::Io {
            context: format!("无法把 {} 挪到 {}", from.display(), dest.display()),
            source,
        });
    }
    let data = blobs.read(root, rel)?;
    blobs.write(root, to, data, Durability::Durable)?;
    blobs.remove(root, rel)
}
