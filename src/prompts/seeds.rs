//! 第一次启动时放进提示词库的示例：人像、产品、场景三类各 4 条，其中 2 条是带变量的模板。都标为示例，可以删。

use crate::types::prompt::SavedPrompt;

pub struct Seed {
    pub title: &'static str,
    pub category: &'static str,
    pub tags: &'static [&'static str],
    pub content: &'static str,
    /// 模板的变量与默认值。
    pub variables: &'static [(&'static str, &'static [&'static str])],
}

impl Seed {
    pub fn prompt(&self, id: String, now: &str) -> SavedPrompt {
        SavedPrompt {
            owner: String::new(),
            id,
            title: self.title.into(),
            content: self.content.into(),
            category: self.category.into(),
            tags: self.tags.iter().map(|t| t.to_string()).collect(),
            favourite: false,
            use_count: 0,
            last_used_at: None,
            created_at: now.into(),
            updated_at: now.into(),
            deleted_at: None,
            variables: self
                .variables
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            example: true,
        }
    }
}

pub const SEEDS: &[Seed] = &[
    Seed {
        title: "证件照",
        category: "人像",
        tags: &["证件照", "写实"],
        content: "一张标准证件照：人物正面半身，浅蓝色纯色背景，柔和均匀的影棚光，表情自然，衣着整洁，高清写实",
        variables: &[],
    },
    Seed {
        title: "胶片街拍",
        category: "人像",
        tags: &["胶片", "街拍"],
        content: "城市街头的人物抓拍，35mm 胶片质感，午后侧光，浅景深，背景是熙攘的老街，颗粒细腻，色调温暖",
        variables: &[],
    },
    Seed {
        title: "换个风格的头像（模板）",
        category: "人像",
        tags: &["头像", "风格化"],
        content: "把参考图里的人物画成{风格}风格的头像，保留五官特征，背景简洁",
        variables: &[("风格", &["日系动漫", "油画", "像素画"])],
    },
    Seed {
        title: "棚拍肖像",
        category: "人像",
        tags: &["肖像", "布光"],
        content: "黑色背景的棚拍肖像，伦勃朗光，人物微微侧脸，皮肤质感真实，85mm 镜头，画面安静克制",
        variables: &[],
    },
    Seed {
        title: "白底电商主图",
        category: "产品",
        tags: &["电商", "白底"],
        content: "商品放在纯白背景中央，柔光箱打光，轻微的地面倒影，无多余道具，适合电商主图，高清锐利",
        variables: &[],
    },
    Seed {
        title: "产品场景图（模板）",
        category: "产品",
        tags: &["电商", "场景"],
        content: "把{产品}放在{场景}里，自然光，构图留出右侧文案空间，质感真实，商业摄影风格",
        variables: &[
            ("产品", &["一瓶香水", "一副无线耳机"]),
            ("场景", &["清晨的窗台", "木质书桌", "海边礁石"]),
        ],
    },
    Seed {
        title: "悬浮爆炸图",
        category: "产品",
        tags: &["创意", "结构"],
        content: "产品各个部件沿一条轴线悬浮分离的爆炸视图，浅灰渐变背景，每个零件清晰可辨，工业设计展示风格",
        variables: &[],
    },
    Seed {
        title: "食物特写",
        category: "产品",
        tags: &["美食", "特写"],
        content: "一份刚出锅的食物特写，热气升腾，45 度俯拍，暖色调，背景虚化的木桌与餐具，让人有食欲",
        variables: &[],
    },
    Seed {
        title: "雪山小屋",
        category: "场景",
        tags: &["风景", "冬天"],
        content: "雪山脚下的小木屋，窗里透出暖黄的灯光，夜空中有银河，冷暖对比，宁静",
        variables: &[],
    },
    Seed {
        title: "赛博朋克街道",
        category: "场景",
        tags: &["科幻", "夜景"],
        content: "雨夜的赛博朋克街道，霓虹招牌倒映在积水里，行人撑着透明雨伞，空中有飞行器，电影感构图",
        variables: &[],
    },
    Seed {
        title: "国风山水",
        category: "场景",
        tags: &["国风", "水墨"],
        content: "水墨国风山水，远山层叠，江上一叶扁舟，留白充足，淡雅的青绿设色",
        variables: &[],
    },
    Seed {
        title: "等距小房间",
        category: "场景",
        tags: &["3D", "等距"],
        content: "等距视角的 3D 小房间，柔和的粘土材质，暖色灯光，房间里摆满书和绿植，可爱治愈",
        variables: &[],
    },
];
