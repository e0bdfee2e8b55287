//! 元数据库的表结构：两种数据库各一份迁移脚本（方言不同），内容一一对应，由 `db` 按顺序执行。
//! 两份都只能在末尾追加，不能修改已有的：已在用的库按条数记着执行到哪里，改动旧的一条不会再执行。

/// SQLite 的迁移：按顺序执行，已执行过的不会再执行；只能在末尾追加，不能修改已有的。
/// 追加时在 `POSTGRES_MIGRATIONS` 里也追加一条做同样改动的。
pub(super) const SQLITE_MIGRATIONS: &[&str] = &[
    "CREATE TABLE images (
            id           TEXT PRIMARY KEY,
            root         TEXT NOT NULL,   -- 写入时的存储根目录（绝对路径）
            rel_path     TEXT NOT NULL,   -- 相对 root 的文件路径
            mime         TEXT NOT NULL,
            width        INTEGER NOT NULL,
            height       INTEGER NOT NULL,
            bytes        INTEGER NOT NULL,
            prompt       TEXT NOT NULL,
            mode         TEXT NOT NULL,   -- text2img / img2img
            model        TEXT NOT NULL,
            aspect_ratio TEXT NOT NULL,
            image_size   TEXT NOT NULL,
            upstream     TEXT NOT NULL,
            created_at   TEXT NOT NULL,   -- RFC 3339，UTC
            deleted_at   TEXT
        );
        CREATE INDEX images_created ON images(created_at DESC);",
    "ALTER TABLE images ADD COLUMN thumb_rel_path TEXT;          -- 缩略图，相对 root；生成前为空
             ALTER TABLE images ADD COLUMN duration_ms INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE images ADD COLUMN attempts TEXT NOT NULL DEFAULT '[]';  -- 尝试记录（JSON）",
    "CREATE TABLE uploads (
            id         TEXT PRIMARY KEY,   -- 内容的 SHA-256（十六进制）：同样的图只存一份
            root       TEXT NOT NULL,
            rel_path   TEXT NOT NULL,
            mime       TEXT NOT NULL,
            bytes      INTEGER NOT NULL,
            created_at TEXT NOT NULL
        );
        ALTER TABLE images ADD COLUMN reference_ids TEXT NOT NULL DEFAULT '[]'; -- 参考图（uploads.id 的 JSON 数组）
        CREATE INDEX images_deleted ON images(deleted_at);",
    "CREATE TABLE batches (
            id            TEXT PRIMARY KEY,
            prompt        TEXT NOT NULL,
            reference_ids TEXT NOT NULL,   -- JSON 数组
            count         INTEGER NOT NULL,
            aspect_ratio  TEXT NOT NULL,
            image_size    TEXT NOT NULL,
            model         TEXT NOT NULL,   -- 空为默认模型
            created_at    TEXT NOT NULL
        );
        CREATE TABLE jobs (
            id          TEXT PRIMARY KEY,
            batch_id    TEXT NOT NULL REFERENCES batches(id),
            idx         INTEGER NOT NULL,  -- 本批中的序号，从 1 起
            state       TEXT NOT NULL,     -- queued/running/done/failed/cancelled/interrupted
            run         INTEGER NOT NULL DEFAULT 0,
            upstream    TEXT,
            error       TEXT,
            attempts    TEXT NOT NULL DEFAULT '[]',
            image_id    TEXT,
            created_at  TEXT NOT NULL,
            started_at  TEXT,
            finished_at TEXT,
            hidden      INTEGER NOT NULL DEFAULT 0  -- 从工作台移除
        );
        CREATE INDEX jobs_state ON jobs(state);
        CREATE INDEX jobs_created ON jobs(created_at);",
    // 缩略图的路径由原图路径决定（`thumb_rel_path`），有没有生成看文件在不在，不必再写一次库。
    "ALTER TABLE images DROP COLUMN thumb_rel_path;",
    // 批次是谁提交的（工作台会话或 IP 的指纹、/v1 的密钥指纹）：排队上限按它计。
    "ALTER TABLE batches ADD COLUMN client TEXT NOT NULL DEFAULT '';",
    // 幂等键：同一调用方、同一接口、同一个 Idempotency-Key 在 24 小时内只生成一次（重启后也记得）；
    // 任务没能存进图库的图先放在暂存区，`spill` 是它的暂存 id（“重新保存”用）。
    "CREATE TABLE idempotency (
            key          TEXT PRIMARY KEY,  -- 调用方|接口|Idempotency-Key
            request_hash TEXT NOT NULL,     -- 请求参数与参考图内容的 SHA-256：同一个键配不同的请求是 409
            result       TEXT NOT NULL,     -- 生成的图：[{\"id\",\"revised_prompt\"}]（JSON）
            created_at   INTEGER NOT NULL   -- Unix 秒；24 小时后作废
        );
        ALTER TABLE jobs ADD COLUMN spill TEXT;",
    // 批量：批次有名称、可暂停、可置顶、可整批移除；每个任务有自己展开后的提示词、参考图与变量值
    // （为空时用批次的，兼容以前的任务）。图片记下模型随图说的话；上传记下原来的文件名。
    "ALTER TABLE batches ADD COLUMN name TEXT NOT NULL DEFAULT '';
        ALTER TABLE batches ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE batches ADD COLUMN priority INTEGER NOT NULL DEFAULT 0; -- 置顶的先后：越大越靠前
        ALTER TABLE batches ADD COLUMN hidden INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN prompt TEXT;
        ALTER TABLE jobs ADD COLUMN reference_ids TEXT;  -- JSON 数组
        ALTER TABLE jobs ADD COLUMN variables TEXT;      -- JSON 对象：变量名 → 值
        ALTER TABLE images ADD COLUMN model_text TEXT;
        ALTER TABLE uploads ADD COLUMN filename TEXT;
        CREATE INDEX jobs_batch ON jobs(batch_id, idx);
        CREATE INDEX batches_created ON batches(created_at DESC);",
    // 提示词库（可带变量的模板，软删除）；图片可以收藏；任务记下展开前的模板（“保存为提示词”用）。
    "CREATE TABLE prompts (
            id           TEXT PRIMARY KEY,
            title        TEXT NOT NULL,
            content      TEXT NOT NULL,
            category     TEXT NOT NULL DEFAULT '',
            tags         TEXT NOT NULL DEFAULT '[]',  -- JSON 数组
            favourite    INTEGER NOT NULL DEFAULT 0,
            use_count    INTEGER NOT NULL DEFAULT 0,
            last_used_at TEXT,
            created_at   TEXT NOT NULL,
            updated_at   TEXT NOT NULL,
            deleted_at   TEXT,
            variables    TEXT NOT NULL DEFAULT '{}',  -- JSON 对象：变量名 → 保存的值
            example      INTEGER NOT NULL DEFAULT 0   -- 第一次启动时放进来的示例
        );
        CREATE INDEX prompts_content ON prompts(content);
        ALTER TABLE images ADD COLUMN favourite INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN template TEXT;",
    // 用量：每小时 × 调用方 × 上游 × 模型 × 密钥一行（超过保留期的按天合并，`period` 为日期）。
    "CREATE TABLE usage (
            period      TEXT NOT NULL,     -- 'YYYY-MM-DDTHH'（UTC 的小时）或 'YYYY-MM-DD'（按天合并后）
            client      TEXT NOT NULL,
            upstream    TEXT NOT NULL,
            model       TEXT NOT NULL,
            key_index   INTEGER NOT NULL,  -- 密钥在池里的序号（从 1 起），没有密钥为 0
            requests    INTEGER NOT NULL DEFAULT 0,  -- 上游尝试次数
            images      INTEGER NOT NULL DEFAULT 0,
            failures    TEXT NOT NULL DEFAULT '{}',  -- JSON：错误分类 → 次数
            retries     INTEGER NOT NULL DEFAULT 0,
            fallbacks   INTEGER NOT NULL DEFAULT 0,
            latency     TEXT NOT NULL DEFAULT '[]',  -- JSON：耗时直方图各桶的次数（桶见 usage::LATENCY_BUCKETS_MS）
            bytes_in    INTEGER NOT NULL DEFAULT 0,
            bytes_out   INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (period, client, upstream, model, key_index)
        );",
    // 联网搜索：批次记下开没开，图记下引用的来源；图的尺寸与请求的不符时记下说明。
    "ALTER TABLE batches ADD COLUMN google_search INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE images ADD COLUMN sources TEXT NOT NULL DEFAULT '[]';  -- JSON：[[标题, 网址], …]
        ALTER TABLE images ADD COLUMN size_note TEXT;",
    // 各实例共用的密钥（签名图片链接等）：元数据在 PostgreSQL 时放这里；SQLite 时仍在数据库旁的文件里。
    "CREATE TABLE secrets (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 几个实例共用一个库：任务记下正在运行它的实例；实例定时在 instances 里报平安（Unix 毫秒），
    // 超过租约没报的实例，它运行中的任务由别的实例标为中断。
    "ALTER TABLE jobs ADD COLUMN owner TEXT;
        CREATE TABLE instances (id TEXT PRIMARY KEY, heartbeat_at INTEGER NOT NULL);",
    // 登录会话（只存令牌的 SHA-256）：元数据在 PostgreSQL 时各实例共用；SQLite 时会话只在内存里，这张表不用。
    "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, expires_at INTEGER NOT NULL);",
    // 各实例合起来的限流（GCRA 的理论到达时刻，Unix 毫秒）：元数据在 PostgreSQL 时用。
    "CREATE TABLE rate_limits (key TEXT PRIMARY KEY, tat INTEGER NOT NULL);",
    // 集群模式下各实例共用的配置（只有一行，id = 1；version 每次保存加一）：元数据在 PostgreSQL 时用。
    "CREATE TABLE shared_config (id INTEGER PRIMARY KEY, version INTEGER NOT NULL, text TEXT NOT NULL,
            saved_at INTEGER NOT NULL, saved_by TEXT NOT NULL);",
    // 各实例共用的熔断：上游熔断到何时（Unix 毫秒）。元数据在 PostgreSQL 时用。
    "CREATE TABLE breakers (upstream TEXT PRIMARY KEY, open_until INTEGER NOT NULL);",
    // 各实例正在生成的任务此刻的进度（每秒写一次），别的实例的页面据此显示。元数据在 PostgreSQL 时用。
    "CREATE TABLE job_progress (job_id TEXT PRIMARY KEY, percent INTEGER NOT NULL, phase TEXT,
            attempt INTEGER NOT NULL, elapsed_ms INTEGER NOT NULL, upstream TEXT, updated_at INTEGER NOT NULL);",
    // 花费（#37）：每次尝试按目录价格记（美元，百万分之一的整数）；已计费与可能已计费分开，价格未知的记次数。
    "ALTER TABLE usage ADD COLUMN spend_micros INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE usage ADD COLUMN maybe_billed INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE usage ADD COLUMN maybe_spend_micros INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE usage ADD COLUMN unpriced INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE usage ADD COLUMN maybe_unpriced INTEGER NOT NULL DEFAULT 0;",
    // 团队账号（#38）：账号（argon2 哈希、角色、停用、额度 JSON；epoch 在改密码与停用时加一，旧会话随之作废）、
    // 只追加的操作记录；批次、图片、提示词记下所属账号（没有账号时为空）；会话记下账号；
    // 用量多一列账号（主键跟着变，表重建）。
    "CREATE TABLE accounts (
            name          TEXT PRIMARY KEY,
            display_name  TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            role          TEXT NOT NULL,             -- admin / member
            disabled      INTEGER NOT NULL DEFAULT 0,
            epoch         INTEGER NOT NULL DEFAULT 0,
            limits        TEXT NOT NULL DEFAULT '{}', -- JSON：AccountLimits
            created_at    TEXT NOT NULL,
            last_seen_at  TEXT
        );
        CREATE TABLE audit_log (
            id     TEXT PRIMARY KEY,  -- UUIDv7：按时间排序
            at     TEXT NOT NULL,
            actor  TEXT NOT NULL,
            action TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        ALTER TABLE batches ADD COLUMN account TEXT NOT NULL DEFAULT '';
        ALTER TABLE images ADD COLUMN account TEXT NOT NULL DEFAULT '';
        ALTER TABLE prompts ADD COLUMN account TEXT NOT NULL DEFAULT '';
        ALTER TABLE sessions ADD COLUMN account TEXT NOT NULL DEFAULT '';
        ALTER TABLE sessions ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX images_account ON images(account, created_at DESC);
        CREATE INDEX batches_account ON batches(account, created_at DESC);
        CREATE TABLE usage_v2 (
            period      TEXT NOT NULL,
            client      TEXT NOT NULL,
            account     TEXT NOT NULL DEFAULT '',
            upstream    TEXT NOT NULL,
            model       TEXT NOT NULL,
            key_index   INTEGER NOT NULL,
            requests    INTEGER NOT NULL DEFAULT 0,
            images      INTEGER NOT NULL DEFAULT 0,
            failures    TEXT NOT NULL DEFAULT '{}',
            retries     INTEGER NOT NULL DEFAULT 0,
            fallbacks   INTEGER NOT NULL DEFAULT 0,
            latency     TEXT NOT NULL DEFAULT '[]',
            bytes_in    INTEGER NOT NULL DEFAULT 0,
            bytes_out   INTEGER NOT NULL DEFAULT 0,
            spend_micros INTEGER NOT NULL DEFAULT 0,
            maybe_billed INTEGER NOT NULL DEFAULT 0,
            maybe_spend_micros INTEGER NOT NULL DEFAULT 0,
            unpriced    INTEGER NOT NULL DEFAULT 0,
            maybe_unpriced INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (period, client, account, upstream, model, key_index)
        );
        INSERT INTO usage_v2 (period, client, account, upstream, model, key_index, requests, images, failures,
            retries, fallbacks, latency, bytes_in, bytes_out, spend_micros, maybe_billed, maybe_spend_micros,
            unpriced, maybe_unpriced)
          SELECT period, client, '', upstream, model, key_index, requests, images, failures,
            retries, fallbacks, latency, bytes_in, bytes_out, spend_micros, maybe_billed, maybe_spend_micros,
            unpriced, maybe_unpriced FROM usage;
        DROP TABLE usage;
        ALTER TABLE usage_v2 RENAME TO usage;
        CREATE INDEX usage_account ON usage(account, period);",
    // 局部修改（#40）：批次记下蒙版（上传的 PNG 的 id）；重试照样用它。
    "ALTER TABLE batches ADD COLUMN mask TEXT;",
    // `check --repair` 标记的文件问题：缺失 / 不完整（文件已挪到 quarantine/）；正常为空。
    "ALTER TABLE images ADD COLUMN file_problem TEXT;",
];

/// PostgreSQL 的迁移：与 `SQLITE_MIGRATIONS` 做同样的事。第 1 条一次建好与 SQLite 第 1–11 条之后相同的表
/// （PostgreSQL 从这个版本起才支持）；之后每在 SQLite 那边追加一条，这里也追加一条。
/// 文字列都用 `COLLATE "C"`：按字节比较与排序，与 SQLite 一样（时间字符串与游标的比较依赖它）。
pub(super) const POSTGRES_MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE images (
    id            TEXT COLLATE "C" PRIMARY KEY,
    root          TEXT COLLATE "C" NOT NULL,
    rel_path      TEXT COLLATE "C" NOT NULL,
    mime          TEXT COLLATE "C" NOT NULL,
    width         BIGINT NOT NULL,
    height        BIGINT NOT NULL,
    bytes         BIGINT NOT NULL,
    prompt        TEXT COLLATE "C" NOT NULL,
    mode          TEXT COLLATE "C" NOT NULL,
    model         TEXT COLLATE "C" NOT NULL,
    aspect_ratio  TEXT COLLATE "C" NOT NULL,
    image_size    TEXT COLLATE "C" NOT NULL,
    upstream      TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    deleted_at    TEXT COLLATE "C",
    duration_ms   BIGINT NOT NULL DEFAULT 0,
    attempts      TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    reference_ids TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    model_text    TEXT COLLATE "C",
    favourite     BIGINT NOT NULL DEFAULT 0,
    sources       TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    size_note     TEXT COLLATE "C"
);
CREATE INDEX images_created ON images(created_at DESC);
CREATE INDEX images_deleted ON images(deleted_at);
CREATE TABLE uploads (
    id         TEXT COLLATE "C" PRIMARY KEY,
    root       TEXT COLLATE "C" NOT NULL,
    rel_path   TEXT COLLATE "C" NOT NULL,
    mime       TEXT COLLATE "C" NOT NULL,
    bytes      BIGINT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL,
    filename   TEXT COLLATE "C"
);
CREATE TABLE batches (
    id            TEXT COLLATE "C" PRIMARY KEY,
    prompt        TEXT COLLATE "C" NOT NULL,
    reference_ids TEXT COLLATE "C" NOT NULL,
    count         BIGINT NOT NULL,
    aspect_ratio  TEXT COLLATE "C" NOT NULL,
    image_size    TEXT COLLATE "C" NOT NULL,
    model         TEXT COLLATE "C" NOT NULL,
    created_at    TEXT COLLATE "C" NOT NULL,
    client        TEXT COLLATE "C" NOT NULL DEFAULT '',
    name          TEXT COLLATE "C" NOT NULL DEFAULT '',
    paused        BIGINT NOT NULL DEFAULT 0,
    priority      BIGINT NOT NULL DEFAULT 0,
    hidden        BIGINT NOT NULL DEFAULT 0,
    google_search BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX batches_created ON batches(created_at DESC);
CREATE TABLE jobs (
    id            TEXT COLLATE "C" PRIMARY KEY,
    batch_id      TEXT COLLATE "C" NOT NULL REFERENCES batches(id),
    idx           BIGINT NOT NULL,
    state         TEXT COLLATE "C" NOT NULL,
    run           BIGINT NOT NULL DEFAULT 0,
    upstream      TEXT COLLATE "C",
    error         TEXT COLLATE "C",
    attempts      TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    image_id      TEXT COLLATE "C",
    created_at    TEXT COLLATE "C" NOT NULL,
    started_at    TEXT COLLATE "C",
    finished_at   TEXT COLLATE "C",
    hidden        BIGINT NOT NULL DEFAULT 0,
    spill         TEXT COLLATE "C",
    prompt        TEXT COLLATE "C",
    reference_ids TEXT COLLATE "C",
    variables     TEXT COLLATE "C",
    template      TEXT COLLATE "C"
);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_created ON jobs(created_at);
CREATE INDEX jobs_batch ON jobs(batch_id, idx);
CREATE TABLE idempotency (
    key          TEXT COLLATE "C" PRIMARY KEY,
    request_hash TEXT COLLATE "C" NOT NULL,
    result       TEXT COLLATE "C" NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE TABLE prompts (
    id           TEXT COLLATE "C" PRIMARY KEY,
    title        TEXT COLLATE "C" NOT NULL,
    content      TEXT COLLATE "C" NOT NULL,
    category     TEXT COLLATE "C" NOT NULL DEFAULT '',
    tags         TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    favourite    BIGINT NOT NULL DEFAULT 0,
    use_count    BIGINT NOT NULL DEFAULT 0,
    last_used_at TEXT COLLATE "C",
    created_at   TEXT COLLATE "C" NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL,
    deleted_at   TEXT COLLATE "C",
    variables    TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    example      BIGINT NOT NULL DEFAULT 0
);
-- 内容可能很长（B 树索引的一项有 2.7 KB 的上限），按内容查找只用等号，哈希索引就够。
CREATE INDEX prompts_content ON prompts USING hash (content);
CREATE TABLE usage (
    period    TEXT COLLATE "C" NOT NULL,
    client    TEXT COLLATE "C" NOT NULL,
    upstream  TEXT COLLATE "C" NOT NULL,
    model     TEXT COLLATE "C" NOT NULL,
    key_index BIGINT NOT NULL,
    requests  BIGINT NOT NULL DEFAULT 0,
    images    BIGINT NOT NULL DEFAULT 0,
    failures  TEXT COLLATE "C" NOT NULL DEFAULT '{}',
    retries   BIGINT NOT NULL DEFAULT 0,
    fallbacks BIGINT NOT NULL DEFAULT 0,
    latency   TEXT COLLATE "C" NOT NULL DEFAULT '[]',
    bytes_in  BIGINT NOT NULL DEFAULT 0,
    bytes_out BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (period, client, upstream, model, key_index)
);
"#,
    // SQLite 的第 12 条。
    r#"CREATE TABLE secrets (name TEXT COLLATE "C" PRIMARY KEY, value TEXT COLLATE "C" NOT NULL);"#,
    // SQLite 的第 13 条。
    r#"ALTER TABLE jobs ADD COLUMN owner TEXT COLLATE "C";
    CREATE TABLE instances (id TEXT COLLATE "C" PRIMARY KEY, heartbeat_at BIGINT NOT NULL);"#,
    // SQLite 的第 14 条。
    r#"CREATE TABLE sessions (token_hash TEXT COLLATE "C" PRIMARY KEY, role TEXT COLLATE "C" NOT NULL,
        expires_at BIGINT NOT NULL);"#,
    // SQLite 的第 15 条。
    r#"CREATE TABLE rate_limits (key TEXT COLLATE "C" PRIMARY KEY, tat BIGINT NOT NULL);"#,
    // SQLite 的第 16 条。
    r#"CREATE TABLE shared_config (id BIGINT PRIMARY KEY, version BIGINT NOT NULL, text TEXT COLLATE "C" NOT NULL,
        saved_at BIGINT NOT NULL, saved_by TEXT COLLATE "C" NOT NULL);"#,
    // SQLite 的第 17 条。
    r#"CREATE TABLE breakers (upstream TEXT COLLATE "C" PRIMARY KEY, open_until BIGINT NOT NULL);"#,
    // SQLite 的第 18 条。
    r#"CREATE TABLE job_progress (job_id TEXT COLLATE "C" PRIMARY KEY, percent BIGINT NOT NULL, phase TEXT COLLATE "C",
        attempt BIGINT NOT NULL, elapsed_ms BIGINT NOT NULL, upstream TEXT COLLATE "C", updated_at BIGINT NOT NULL);"#,
    // SQLite 的第 19 条。
    r#"ALTER TABLE usage ADD COLUMN spend_micros BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE usage ADD COLUMN maybe_billed BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE usage ADD COLUMN maybe_spend_micros BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE usage ADD COLUMN unpriced BIGINT NOT NULL DEFAULT 0;
    ALTER TABLE usage ADD COLUMN maybe_unpriced BIGINT NOT NULL DEFAULT 0;"#,
    // SQLite 的第 20 条。
    r#"CREATE TABLE accounts (
        name          TEXT COLLATE "C" PRIMARY KEY,
        display_name  TEXT COLLATE "C" NOT NULL,
        password_hash TEXT COLLATE "C" NOT NULL,
        role          TEXT COLLATE "C" NOT NULL,
        disabled      BIGINT NOT NULL DEFAULT 0,
        epoch         BIGINT NOT NULL DEFAULT 0,
        limits        TEXT COLLATE "C" NOT NULL DEFAULT '{}',
        created_at    TEXT COLLATE "C" NOT NULL,
        last_seen_at  TEXT COLLATE "C"
    );
    CREATE TABLE audit_log (
        id     TEXT COLLATE "C" PRIMARY KEY,
        at     TEXT COLLATE "C" NOT NULL,
        actor  TEXT COLLATE "C" NOT NULL,
        action TEXT COLLATE "C" NOT NULL,
        detail TEXT COLLATE "C" NOT NULL
    );
    ALTER TABLE batches ADD COLUMN account TEXT COLLATE "C" NOT NULL DEFAULT '';
    ALTER TABLE images ADD COLUMN account TEXT COLLATE "C" NOT NULL DEFAULT '';
    ALTER TABLE prompts ADD COLUMN account TEXT COLLATE "C" NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN account TEXT COLLATE "C" NOT NULL DEFAULT '';
    ALTER TABLE sessions ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
    CREATE INDEX images_account ON images(account, created_at DESC);
    CREATE INDEX batches_account ON batches(account, created_at DESC);
    ALTER TABLE usage ADD COLUMN account TEXT COLLATE "C" NOT NULL DEFAULT '';
    ALTER TABLE usage DROP CONSTRAINT usage_pkey;
    ALTER TABLE usage ADD PRIMARY KEY (period, client, account, upstream, model, key_index);
    CREATE INDEX usage_account ON usage(account, period);"#,
    // SQLite 的第 21 条。
    r#"ALTER TABLE batches ADD COLUMN mask TEXT COLLATE "C";"#,
    // SQLite 的第 22 条。
    r#"ALTER TABLE images ADD COLUMN file_problem TEXT COLLATE "C";"#,
];
