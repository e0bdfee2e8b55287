//! 选上游：请求某个模型时只用列出了它的上游，按 `priority` 从小到大；同一优先级的按 `weight`
//! 用平滑加权轮询（nginx 的做法）排出先后——3:1 的权重在 4 个请求里恰好是 3 个与 1 个，且交错而不成串。

use crate::config::UpstreamConfig;
use std::collections::HashMap;
use std::sync::Mutex;

/// 平滑加权轮询的当前值（按上游名）。
#[derive(Default)]
pub struct Balancer {
    current: Mutex<HashMap<String, i64>>,
}

impl Balancer {
    /// 提供 `model` 的上游（`None` 为全部），排好尝试的先后：优先级小的在前；同一优先级里，
    /// 轮到的那个在前，其余按权重从大到小（它们是失败时的后备）。
    pub fn order(&self, upstreams: &[UpstreamConfig], model: Option<&str>) -> Vec<UpstreamConfig> {
        let mut list: Vec<UpstreamConfig> = upstreams
            .iter()
            .filter(|u| model.is_none_or(|m| u.serves(m)))
            .cloned()
            .collect();
        list.sort_by_key(|u| u.priority);
        let mut ordered = Vec::with_capacity(list.len());
        let mut current = self.current.lock().expect("轮询锁未被毒化");
        for group in list.chunk_by(|a, b| a.priority == b.priority) {
            if group.len() == 1 {
                ordered.push(group[0].clone());
                continue;
            }
            let total: i64 = group.iter().map(|u| u.weight.max(1) as i64).sum();
            let mut best = 0;
            let mut best_value = i64::MIN;
            for (i, u) in group.iter().enumerate() {
                let c = current.entry(u.name.clone()).or_default();
                *c += u.weight.max(1) as i64;
                // 相等时取靠前的（与 nginx 一致）。
                if *c > best_value {
                    (best, best_value) = (i, *c);
                }
            }
            *current.get_mut(&group[best].name).expect("刚加过") -= total;
            let mut rest: Vec<&UpstreamConfig> = group
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != best)
                .map(|(_, u)| u)
                .collect();
            rest.sort_by_key(|u| std::cmp::Reverse(u.weight));
            ordered.push(group[best].clone());
            ordered.extend(rest.into_iter().cloned());
        }
        ordered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(name: &str, priority: i32, weight: u32, models: &[&str]) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            priority,
            weight,
            model: models[0].into(),
            models: models.iter().map(|m| m.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn routes_by_model_priority_and_weight() {
        let b = Balancer::default();
        let ups = [
            up("a", 0, 3, &["m1"]),
            up("b", 0, 1, &["m1", "m2"]),
            up("c", 1, 1, &["m2"]),
        ];
        let firsts: Vec<String> = (0..8)
            .map(|_| b.order(&ups, Some("m1"))[0].name.clone())
            .collect();
        assert_eq!(firsts, ["a", "a", "b", "a", "a", "a", "b", "a"]);
        let names =
            |list: Vec<UpstreamConfig>| list.into_iter().map(|u| u.name).collect::<Vec<_>>();
        assert_eq!(names(b.order(&ups, Some("m2"))), ["b", "c"]);
        assert!(b.order(&ups, Some("m3")).is_empty());
        assert_eq!(b.order(&ups, None).len(), 3);
        assert_eq!(b.order(&ups, None)[2].name, "c", "优先级低的总在后面");
    }
}
