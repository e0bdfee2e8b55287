//! 模型目录：`src/models.toml`（编进程序）加上配置里的 `[[models]]`（同 id 的改写，新的追加）。
//! 每个请求在进网关之前按所选模型的能力校验（宽高比、分辨率、参考图数、联网搜索），做不到的 400，
//! 说明它能做什么，不调用上游；请求停用了的旧 id（`aliases`）时改用现在的模型。
//! 上游列出而目录里没有的模型（私有部署的名字）照样可用，按最宽松的能力放行，启动时提示一次。

use crate::config::Config;
use crate::types::catalogue::ModelInfo;
use std::sync::LazyLock;

/// 编进程序的目录。
static BUILT_IN: LazyLock<Vec<ModelInfo>> = LazyLock::new(|| {
    #[derive(serde::Deserialize)]
    struct File {
        models: Vec<ModelInfo>,
    }
    let file: File =
        toml::from_str(include_str!("models.toml")).expect("src/models.toml 有单元测试检查");
    file.models
});

/// 这份配置下的目录：编进程序的，被配置里同 id 的改写，再加上配置里新的。
pub fn models(config: &Config) -> Vec<ModelInfo> {
    let mut all = BUILT_IN.clone();
    for m in &config.models {
        match all.iter_mut().find(|x| x.id == m.id) {
            Some(x) => *x = m.clone(),
            None => all.push(m.clone()),
        }
    }
    all
}

/// 停用了的旧 id 换成现在的模型；不是旧 id 的原样返回。
pub fn resolve(config: &Config, id: &str) -> String {
    models(config)
        .into_iter()
        .find(|m| m.aliases.iter().any(|a| a == id))
        .map_or_else(|| id.to_string(), |m| m.id)
}

/// 一个模型的能力；目录里没有的按最宽松的。
pub fn lookup(config: &Config, id: &str) -> ModelInfo {
    let id = resolve(config, id);
    models(config)
        .into_iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| ModelInfo::permissive(&id))
}

/// 上游列出、目录里却没有的模型（启动时提示一次）。
pub fn unknown_models(config: &Config) -> Vec<String> {
    let known = models(config);
    let mut unknown: Vec<String> = config
        .upstreams
        .iter()
        .flat_map(|u| u.served_models())
        .filter(|m| !known.iter().any(|k| k.id == *m || k.aliases.contains(m)))
        .collect();
    unknown.dedup();
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalogue_parses_and_ids_and_aliases_are_unique() {
        let all = BUILT_IN.clone();
        assert!(all.len() >= 4);
        let mut seen = std::collections::HashSet::new();
        for m in &all {
            assert!(!m.name.is_empty(), "{} 没有中文名", m.id);
            assert!(
                !m.sizes.is_empty() && !m.aspect_ratios.is_empty(),
                "{}",
                m.id
            );
            for id in std::iter::once(&m.id).chain(&m.aliases) {
                assert!(seen.insert(id.clone()), "{id} 出现了两次");
            }
        }
        let config = Config::default();
        assert!(
            all.iter().any(|m| m.id == crate::config::DEFAULT_MODEL),
            "默认模型在目录里"
        );
        assert!(
            !all.iter()
                .any(|m| m.aliases.iter().any(|a| a == crate::config::DEFAULT_MODEL)),
            "默认模型不是旧 id"
        );
        assert!(!lookup(&config, "private-model-x").known);
        assert_eq!(lookup(&config, "private-model-x").max_references, 14);
    }
}
