//! `script`: run a controller-side script on the host. The script is found like copy's `src`
//! (role `files/`, the task's folder, the playbook's folder), sent on the standard input of ONE
//! command that writes it to a private temp folder (`mktemp -d` under `$TMPDIR` or `/tmp`, file mode
//! 0700), runs it (through `executable` when given, else by its shebang) and removes the folder
//! whether the script succeeded or not.
//!
//! `creates`/`removes` are checked by a probe first (also in check mode, as Ansible does) and again
//! in the run's own round trip. Check mode never runs the script: with `creates`/`removes` that do
//! not skip it, it reports the change it would make (like `command`); without them it is skipped,
//! as Ansible's script is.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use crate::transport::shell_quote;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// Free-form `script: path/to/local.sh arg1 arg2`.
    #[serde(
        rename = "_raw_params",
        default,
        deserialize_with = "stringish::option"
    )]
    pub raw_params: Option<String>,
    #[serde(default, deserialize_with = "stringish::option")]
    pub cmd: Option<String>,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub chdir: Option<String>,
    pub executable: Option<String>,
    /// Vault decryption (accepted for compatibility; homelab has no vault, files are read as is).
    #[serde(default, with = "boolish::option")]
    pub decrypt: Option<bool>,
}

/// Marks a run the host skipped because creates/removes changed between probe and run.
const SKIP: &str = "HOMELAB-SCRIPT-SKIP:";
/// Marks a failure to set the script up (before it ran), on stderr.
const SETUP: &str = "HOMELAB-SCRIPT-SETUP:";

pub struct Plan {
    /// The script as given (the first word of the free-form text).
    given: String,
    /// The script's file name (kept on the host, so `$0` reads as the user wrote it).
    name: String,
    data: Vec<u8>,
    /// The arguments: shell text after the script's path, passed as written.
    args: String,
    /// Why it will not run (creates/removes), found by the probe.
    skip: Option<String>,
}

pub struct Script;

/// Splits free-form text into the script path (unquoted) and the rest (as written).
pub fn split_script(text: &str) -> Result<(String, String), String> {
    let text = text.trim();
    let mut word = String::new();
    let mut chars = text.char_indices().peekable();
    let mut end = text.len();
    let mut quote: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => match chars.next() {
                Some((_, n @ ('"' | '\\' | '$' | '`'))) => word.push(n),
                Some((_, n)) => {
                    word.push('\\');
                    word.push(n);
                }
                None => word.push('\\'),
            },
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => {
                if let Some((_, n)) = chars.next() {
                    word.push(n);
                }
            }
            (None, c) if c.is_whitespace() => {
                end = i;
                break;
            }
            (None, c) => word.push(c),
        }
    }
    if let Some(q) = quote {
        return Err(format!(
            "unbalanced {q} in '{text}': close the quote around the script's path"
        ));
    }
    if word.is_empty() {
        return Err(
            "no script given: write `script: path/to/script.sh [arguments]` (or cmd: ...)".into(),
        );
    }
    Ok((word, text[end..].trim().to_string()))
}

/// The command that uploads (stdin), runs and removes the script, in one round trip.
pub fn run_script(a: &Args, name: &str, args: &str) -> String {
    let mut s = String::new();
    if let Some(c) = &a.creates {
        s.push_str(&format!(
            "if [ -e {} ]; then echo {}; exit 0; fi\n",
            shell_quote(c),
            shell_quote(&format!("{SKIP}{c} exists, matching creates option"))
        ));
    }
    if let Some(r) = &a.removes {
        s.push_str(&format!(
            "if [ ! -e {} ]; then echo {}; exit 0; fi\n",
            shell_quote(r),
            shell_quote(&format!(
                "{SKIP}{r} does not exist, matching removes option"
            ))
        ));
    }
    let setup_fail = |what: &str| format!("{{ echo \"{SETUP}{what}\" >&2; exit 1; }}");
    s.push_str(&format!(
        "hl_um=$(umask); umask 077\n\
         hl_d=$(mktemp -d \"${{TMPDIR:-/tmp}}/homelab-script.XXXXXX\") || {}\n\
         trap 'rm -rf \"$hl_d\"' EXIT\n\
         trap 'rm -rf \"$hl_d\"; exit 129' HUP\n\
         trap 'rm -rf \"$hl_d\"; exit 130' INT\n\
         trap 'rm -rf \"$hl_d\"; exit 143' TERM\n\
         hl_f=\"$hl_d\"/{}\n\
         {{ cat > \"$hl_f\" && chmod 700 \"$hl_f\"; }} || {}\n\
         umask \"$hl_um\"\n",
        setup_fail("cannot create a private temp folder in ${TMPDIR:-/tmp} (is it writable?)"),
        shell_quote(name),
        setup_fail("cannot write the script to $hl_f"),
    ));
    if let Some(d) = &a.chdir {
        let q = shell_quote(d);
        s.push_str(&format!(
            "cd {q} || {}\n",
            setup_fail(&format!(
                "cannot change directory to {}",
                d.replace(['"', '\\', '$', '`'], "_")
            ))
        ));
    }
    let exe = a
        .executable
        .as_deref()
        .map(|e| format!("{e} "))
        .unwrap_or_default();
    s.push_str(&format!(
        "{exe}\"$hl_f\"{}{args}\nhl_rc=$?\nrm -rf \"$hl_d\"\nexit $hl_rc\n",
        if args.is_empty() { "" } else { " " }
    ));
    s
}

fn lines(s: &str) -> Value {
    Value::Array(s.lines().map(|l| Value::String(l.to_string())).collect())
}

impl Module for Script {
    const NAME: &'static str = "script";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        let text =
            match (&a.raw_params, &a.cmd) {
                (Some(t), None) | (None, Some(t)) => t,
                (Some(_), Some(_)) => {
                    return Err(ModuleError::Failed(
                        "give the script either as free-form text or as cmd:, not both".into(),
                    ))
                }
                (None, None) => return Err(ModuleError::Failed(
                    "no script given: write `script: path/to/script.sh [arguments]` (or cmd: ...)"
                        .into(),
                )),
            };
        let (given, args) = split_script(text).map_err(ModuleError::Failed)?;
        if let Some(d) = a.chdir.as_deref().filter(|d| !d.starts_with('/')) {
            return Err(ModuleError::Failed(format!(
                "chdir {d} must be an absolute path (the host's home folder is not assumed)"
            )));
        }
        let source = ctx.find_file("files", &given).map_err(|e| {
            ModuleError::Failed(format!(
                "{e}; the script is read on the controller: put it in the role's files/ or next to the playbook"
            ))
        })?;
        if source.is_dir() {
            return Err(ModuleError::Failed(format!(
                "{} is a directory, not a script",
                source.display()
            )));
        }
        let data = std::fs::read(&source).map_err(|e| {
            ModuleError::Failed(format!("cannot read the script {}: {e}", source.display()))
        })?;
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into());
        let mut checks = vec![];
        if let Some(c) = &a.creates {
            checks.push(format!("if [ -e {} ]; then echo HLC; fi", shell_quote(c)));
        }
        if let Some(r) = &a.removes {
            checks.push(format!("if [ ! -e {} ]; then echo HLR; fi", shell_quote(r)));
        }
        let mut skip = None;
        if !checks.is_empty() {
            let out = ctx.exec(checks.join("; ")).await?;
            let s = out.stdout_str();
            if s.contains("HLC") {
                skip = Some(format!(
                    "{} exists, matching creates option",
                    a.creates.as_deref().unwrap_or_default()
                ));
            } else if s.contains("HLR") {
                skip = Some(format!(
                    "{} does not exist, matching removes option",
                    a.removes.as_deref().unwrap_or_default()
                ));
            }
        }
        Ok(Plan {
            given,
            name,
            data,
            args,
            skip,
        })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        if let Some(why) = &p.skip {
            let mut r = TaskResult::changed(false).msg(why.clone());
            r.skipped = true;
            return r;
        }
        if ctx.check && a.creates.is_none() && a.removes.is_none() {
            // Ansible: the script could report anything, so check mode skips rather than guesses.
            let mut r = TaskResult::changed(false)
                .msg("Check mode is not supported for this task: the script would have run");
            r.skipped = true;
            return r;
        }
        TaskResult::changed(true)
            .msg("Script would have run if not in check mode")
            .with("cmd", format!("{} {}", p.given, p.args).trim().to_string())
            .with("check_mode_unknown", true)
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        _described: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let start = std::time::Instant::now();
        let out = ctx
            .exec_with(run_script(a, &p.name, &p.args), Some(p.data))
            .await?;
        let stdout = out.stdout_str();
        if let Some(why) = stdout.strip_prefix(SKIP) {
            let mut r = TaskResult::changed(false).msg(why.trim_end().to_string());
            r.skipped = true;
            return Ok(r);
        }
        let stderr = out.stderr_str();
        if !out.success() {
            if let Some(why) = stderr.lines().find_map(|l| l.strip_prefix(SETUP)) {
                return Err(ModuleError::Failed(format!(
                    "could not set the script up on the host: {why}"
                )));
            }
        }
        let so = stdout.trim_end_matches(['\n', '\r']).to_string();
        let se = stderr.trim_end_matches(['\n', '\r']).to_string();
        let mut r = TaskResult::changed(true)
            .with("rc", out.rc())
            .with("stdout_lines", lines(&so))
            .with("stderr_lines", lines(&se))
            .with("stdout", so)
            .with("stderr", se)
            .with("delta", format!("{:.6}", start.elapsed().as_secs_f64()));
        if !out.success() {
            r.failed = true;
            r.msg = Some(match (&out.exit_signal, out.rc()) {
                (Some(sig), _) => format!("the script was killed by signal {sig}"),
                (None, 126) => "non-zero return code 126: the script could not be executed (its #! interpreter missing or not executable? set executable:)".into(),
                (None, 127) => "non-zero return code 127: command not found".into(),
                (None, rc) => format!("non-zero return code {rc}"),
            });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::core::{drive, TaskCtx};
    use crate::transport::local::LocalConnection;
    use crate::transport::Connection;
    use serde_json::json;
    use std::path::PathBuf;

    #[test]
    fn free_form_splits_path_from_arguments_as_written() {
        assert_eq!(
            split_script("  s.sh a 'b c' $HOME ").unwrap(),
            ("s.sh".to_string(), "a 'b c' $HOME".to_string())
        );
        assert_eq!(
            split_script("'my dir/s.sh' x").unwrap(),
            ("my dir/s.sh".to_string(), "x".to_string())
        );
        assert_eq!(
            split_script("my\\ s.sh").unwrap(),
            ("my s.sh".to_string(), String::new())
        );
        assert_eq!(
            split_script("\"a\\\"b.sh\"").unwrap(),
            ("a\"b.sh".to_string(), String::new())
        );
        assert!(split_script("'s.sh x").unwrap_err().contains("unbalanced"));
        assert!(split_script("   ").unwrap_err().contains("no script given"));
    }

    struct Env {
        dir: tempfile::TempDir,
        conn: Connection,
        search: Vec<PathBuf>,
        env: Vec<(String, String)>,
    }

    impl Env {
        fn new() -> Env {
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("files")).unwrap();
            std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
            let search = vec![dir.path().to_path_buf()];
            let env = vec![(
                "TMPDIR".to_string(),
                dir.path().join("tmp").display().to_string(),
            )];
            Env {
                dir,
                conn: Connection::Local(LocalConnection::new("t")),
                search,
                env,
            }
        }
        fn p(&self, n: &str) -> String {
            self.dir.path().join(n).display().to_string()
        }
        async fn run(&self, check: bool, args: serde_json::Value) -> TaskResult {
            let ctx = TaskCtx {
                host: "t",
                conn: &self.conn,
                become_: None,
                check,
                diff: true,
                search: &self.search,
                env: &self.env,
                render: None,
                planned: None,
                paths: None,
            };
            match drive::<Script>(&ctx, &args).await {
                Ok(r) => r,
                Err(e) => TaskResult::failed(e.to_string()),
            }
        }
        fn temp_left(&self) -> Vec<String> {
            std::fs::read_dir(self.dir.path().join("tmp"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        }
    }

    #[tokio::test]
    async fn runs_with_arguments_and_cleans_up_even_on_failure() {
        let e = Env::new();
        std::fs::write(
            e.dir.path().join("files/hello.sh"),
            "#!/bin/sh\necho \"$(basename \"$0\") $# [$1] [$2] $(pwd)\"\necho err >&2\n",
        )
        .unwrap();
        let r = e
            .run(
                false,
                json!({"_raw_params": "hello.sh 'a b' \"$TMPDIR\"", "chdir": e.p("files")}),
            )
            .await;
        assert!(r.changed && !r.failed, "{r:?}");
        assert_eq!(
            r.data["stdout"],
            format!("hello.sh 2 [a b] [{}] {}", e.p("tmp"), e.p("files"))
        );
        assert_eq!(r.data["stderr"], "err");
        assert_eq!(r.data["rc"], 0);
        assert!(e.temp_left().is_empty(), "{:?}", e.temp_left());

        // A failing script: rc, output, failed; the temp folder is gone all the same.
        std::fs::write(e.dir.path().join("files/fail.sh"), "echo partial; exit 3\n").unwrap();
        let r = e.run(false, json!({"cmd": "fail.sh"})).await;
        assert!(r.failed && r.changed, "{r:?}");
        assert_eq!(r.data["rc"], 3);
        assert_eq!(r.data["stdout"], "partial");
        assert!(r
            .msg
            .as_deref()
            .unwrap_or("")
            .contains("non-zero return code 3"));
        assert!(e.temp_left().is_empty(), "{:?}", e.temp_left());

        // executable: the interpreter is given, the script needs no shebang or x bit.
        std::fs::write(e.dir.path().join("files/x.txt"), "echo via-$0-ok\n").unwrap();
        let r = e
            .run(
                false,
                json!({"_raw_params": "x.txt", "executable": "/bin/sh"}),
            )
            .await;
        assert!(!r.failed, "{r:?}");
        assert!(r.data["stdout"]
            .as_str()
            .unwrap_or("")
            .ends_with("x.txt-ok"));
    }

    #[tokio::test]
    async fn creates_removes_and_check_mode() {
        let e = Env::new();
        let marker = e.p("marker");
        std::fs::write(
            e.dir.path().join("files/mk.sh"),
            format!("#!/bin/sh\necho ran >> {marker}\n"),
        )
        .unwrap();
        let args = json!({"_raw_params": "mk.sh", "creates": marker});
        // Check mode: would run (creates decides), nothing is run.
        let r = e.run(true, args.clone()).await;
        assert!(r.changed && !r.skipped && !r.failed, "{r:?}");
        assert!(!std::path::Path::new(&marker).exists());
        // Without creates/removes check mode skips.
        let r = e.run(true, json!({"_raw_params": "mk.sh"})).await;
        assert!(r.skipped && !r.changed, "{r:?}");
        assert!(!std::path::Path::new(&marker).exists());
        // Real run, then creates skips it (also in check mode).
        let r = e.run(false, args.clone()).await;
        assert!(r.changed && !r.failed, "{r:?}");
        let r = e.run(false, args.clone()).await;
        assert!(r.skipped && !r.changed, "{r:?}");
        assert!(r.msg.as_deref().unwrap_or("").contains("exists"), "{r:?}");
        assert!(e.run(true, args).await.skipped);
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
        let r = e
            .run(
                false,
                json!({"_raw_params": "mk.sh", "removes": e.p("nope")}),
            )
            .await;
        assert!(r.skipped, "{r:?}");
        assert!(e.temp_left().is_empty());
    }

    #[tokio::test]
    async fn errors_say_what_to_do() {
        let e = Env::new();
        let r = e.run(false, json!({"_raw_params": "missing.sh arg"})).await;
        assert!(r.failed, "{r:?}");
        let m = r.msg.unwrap_or_default();
        assert!(
            m.contains("missing.sh") && m.contains("searched") && m.contains("controller"),
            "{m}"
        );
        let r = e.run(false, json!({})).await;
        assert!(r.msg.unwrap_or_default().contains("no script given"));
        std::fs::write(e.dir.path().join("files/a.sh"), "true\n").unwrap();
        let r = e
            .run(false, json!({"_raw_params": "a.sh", "chdir": "relative"}))
            .await;
        assert!(r.msg.unwrap_or_default().contains("absolute"));
        let r = e
            .run(false, json!({"_raw_params": "a.sh", "chdir": e.p("nope")}))
            .await;
        assert!(r.failed, "{r:?}");
        assert!(
            r.msg
                .unwrap_or_default()
                .contains("cannot change directory"),
            "chdir failure is a setup failure"
        );
        let r = e
            .run(false, json!({"_raw_params": "a.sh", "bogus": 1}))
            .await;
        assert!(r.msg.unwrap_or_default().contains("unknown field `bogus`"));
        assert!(e.temp_left().is_empty());
    }
}
