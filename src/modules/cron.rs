//! `cron`: one job (or environment variable) in a user's crontab or in a file under /etc/cron.d,
//! written exactly as Ansible writes it: a `#Ansible: NAME` marker line followed by the job line
//! (`[#]MIN HOUR DAY MONTH WEEKDAY [USER] JOB`, or `[#]@SPECIAL [USER] JOB`; `#` when disabled,
//! USER only in a cron_file), so crontabs stay interchangeable with Ansible's. Probe, one round
//! trip: the crontab (`crontab -u USER -l`) or the file. Apply: `crontab -u USER -` from stdin,
//! or an atomic write of the file (mode 0644). `--diff` shows the crontab text.

use super::core::{boolish, stringish, Module, ModuleError, TaskCtx, TaskResult};
use super::remote::{self, WriteOpts};
use crate::transport::shell_quote;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    pub name: Option<String>,
    #[serde(alias = "value")]
    pub job: Option<String>,
    #[serde(default = "star", deserialize_with = "star_or")]
    pub minute: String,
    #[serde(default = "star", deserialize_with = "star_or")]
    pub hour: String,
    #[serde(default = "star", alias = "dom", deserialize_with = "star_or")]
    pub day: String,
    #[serde(default = "star", deserialize_with = "star_or")]
    pub month: String,
    #[serde(default = "star", alias = "dow", deserialize_with = "star_or")]
    pub weekday: String,
    pub special_time: Option<String>,
    pub user: Option<String>,
    pub cron_file: Option<String>,
    #[serde(default)]
    pub state: super::user::State,
    #[serde(default, with = "boolish")]
    pub disabled: bool,
    #[serde(default, with = "boolish")]
    pub env: bool,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
}

fn star() -> String {
    "*".into()
}

fn star_or<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(stringish::option(d)?.unwrap_or_else(star))
}

const MARK: &str = "#Ansible: ";
const SPECIAL: &[&str] = &[
    "reboot", "yearly", "annually", "monthly", "weekly", "daily", "hourly",
];

/// The job line as Ansible writes it.
pub fn job_line(a: &Args, job: &str) -> String {
    let dis = if a.disabled { "#" } else { "" };
    let user = if a.cron_file.is_some() {
        format!("{} ", a.user.as_deref().unwrap_or("root"))
    } else {
        String::new()
    };
    match &a.special_time {
        Some(s) => format!("{dis}@{s} {user}{job}"),
        None => format!(
            "{dis}{} {} {} {} {} {user}{job}",
            a.minute, a.hour, a.day, a.month, a.weekday
        ),
    }
}

/// Checks the arguments (pure).
pub fn validate(a: &Args) -> Result<(), String> {
    if let Some(s) = &a.special_time {
        if !SPECIAL.contains(&s.as_str()) {
            return Err(format!(
                "special_time '{s}' is not one of {}",
                SPECIAL.join(", ")
            ));
        }
        if [&a.minute, &a.hour, &a.day, &a.month, &a.weekday]
            .iter()
            .any(|x| x.as_str() != "*")
        {
            return Err("You must specify time and date fields or special time.".into());
        }
    }
    for (k, v) in [
        ("minute", &a.minute),
        ("hour", &a.hour),
        ("day", &a.day),
        ("month", &a.month),
        ("weekday", &a.weekday),
    ] {
        if v.is_empty() || v.contains(char::is_whitespace) {
            return Err(format!("{k} '{v}' is not a cron time field"));
        }
    }
    let present = a.state == super::user::State::Present;
    if a.name.is_none() && !(a.state == super::user::State::Absent && a.cron_file.is_some()) {
        return Err(
            "name is required: it is the '#Ansible: NAME' marker that finds the job again".into(),
        );
    }
    if present && a.job.is_none() {
        return Err(if a.env {
            "You must specify 'job' (the value) to install a new cron variable".into()
        } else {
            "You must specify 'job' to install a new cron job or variable".into()
        });
    }
    if a.name.as_deref().is_some_and(|n| n.contains('\n'))
        || a.job.as_deref().is_some_and(|n| n.contains('\n'))
    {
        return Err("name and job must be one line each".into());
    }
    if a.insertafter.is_some() && a.insertbefore.is_some() {
        return Err("insertafter and insertbefore are mutually exclusive".into());
    }
    if !a.env && (a.insertafter.is_some() || a.insertbefore.is_some()) {
        return Err("insertafter/insertbefore apply to env: true only".into());
    }
    Ok(())
}

/// The new crontab lines (pure: unit-tested).
pub fn edit(old: &str, a: &Args) -> Vec<String> {
    let mut lines: Vec<String> = old.lines().map(str::to_string).collect();
    let present = a.state == super::user::State::Present;
    let name = a.name.clone().unwrap_or_default();
    if a.env {
        let decl = format!("{name}={}", a.job.as_deref().unwrap_or(""));
        let prefix = format!("{name}=");
        let at = lines.iter().position(|l| l.starts_with(&prefix));
        match (at, present) {
            (Some(i), true) => lines[i] = decl,
            (Some(i), false) => {
                lines.remove(i);
            }
            (None, true) => {
                let find = |v: &str| {
                    let p = format!("{v}=");
                    lines.iter().position(|l| l.starts_with(&p))
                };
                let idx = if let Some(v) = &a.insertafter {
                    find(v).map(|i| i + 1).unwrap_or(lines.len())
                } else if let Some(v) = &a.insertbefore {
                    find(v).unwrap_or(0)
                } else {
                    0
                };
                lines.insert(idx, decl);
            }
            (None, false) => {}
        }
        return lines;
    }
    let marker = format!("{MARK}{name}");
    // The job under its marker.
    let mut found = lines
        .iter()
        .position(|l| *l == marker)
        .filter(|i| *i + 1 < lines.len());
    let job = a.job.as_deref().map(|j| job_line(a, j));
    // Failing that, the exact job line (with no marker above it): a marker is added.
    if found.is_none() && present {
        if let Some(j) = &job {
            if let Some(i) = lines.iter().position(|l| l == j) {
                if i == 0 || !lines[i - 1].starts_with(MARK) {
                    lines.insert(i, marker.clone());
                    found = Some(i);
                }
            }
        }
    }
    match (found, present) {
        (Some(i), true) => {
            if let Some(j) = job {
                lines[i + 1] = j;
            }
        }
        (Some(i), false) => {
            lines.drain(i..i + 2);
        }
        (None, true) => {
            lines.push(marker);
            lines.push(job.unwrap_or_default());
        }
        (None, false) => {
            // A marker left at the very end without its job line.
            if lines.last() == Some(&marker) {
                lines.pop();
            }
        }
    }
    lines
}

pub fn render(lines: &[String]) -> String {
    let s = lines.join("\n");
    if s.trim_end_matches(['\r', '\n']).is_empty() {
        return String::new();
    }
    s.trim_end_matches(['\r', '\n']).to_string() + "\n"
}

/// The cron file's path (relative names are in /etc/cron.d, as Ansible).
pub fn cron_path(f: &str) -> String {
    if f.starts_with('/') {
        f.to_string()
    } else {
        format!("/etc/cron.d/{f}")
    }
}

pub fn probe_script(a: &Args) -> String {
    match &a.cron_file {
        Some(f) => format!(
            "f={}; if [ -f \"$f\" ]; then echo HLEXISTS; echo HLDATA; cat \"$f\"; \
             elif [ ! -d \"$(dirname \"$f\")\" ]; then echo HLNODIR; fi",
            shell_quote(&cron_path(f))
        ),
        None => {
            let u = a
                .user
                .as_ref()
                .map(|u| format!("-u {} ", shell_quote(u)))
                .unwrap_or_default();
            let check_user = a
                .user
                .as_ref()
                .map(|u| {
                    format!(
                        "if ! id -u -- {} >/dev/null 2>&1; then echo HLNOUSER; exit 0; fi; ",
                        shell_quote(u)
                    )
                })
                .unwrap_or_default();
            format!(
                "PATH=$PATH:/usr/sbin:/sbin; {check_user}\
                 if ! command -v crontab >/dev/null 2>&1; then echo HLNOCRONTAB; exit 0; fi; \
                 if c=$(crontab {u}-l 2>/dev/null); then echo HLEXISTS; echo HLDATA; printf '%s\\n' \"$c\"; \
                 else e=$(crontab {u}-l 2>&1 >/dev/null); case \"$e\" in *'no crontab'*) echo HLDATA;; \
                 *) printf 'HLERR %s\\n' \"$e\";; esac; fi"
            )
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Probe {
    pub exists: bool,
    pub content: String,
}

pub fn parse_probe(out: &[u8], host: &str, a: &Args) -> Result<Probe, String> {
    let (head, data) = match out.windows(7).position(|w| w == b"HLDATA\n") {
        Some(i) => (&out[..i], Some(&out[i + 7..])),
        None => (out, None),
    };
    let head = String::from_utf8_lossy(head);
    for l in head.lines() {
        match l {
            "HLNOCRONTAB" => {
                return Err(format!(
                    "crontab is not installed on {host}: install the cron package"
                ))
            }
            "HLNOUSER" => {
                return Err(format!(
                    "user {} does not exist on {host}",
                    a.user.as_deref().unwrap_or_default()
                ))
            }
            "HLNODIR" => {
                return Err(format!(
                    "the folder of {} does not exist on {host} (is cron installed?)",
                    cron_path(a.cron_file.as_deref().unwrap_or_default())
                ))
            }
            _ => {}
        }
        if let Some(e) = l.strip_prefix("HLERR ") {
            return Err(format!("could not read the crontab on {host}: {e}"));
        }
    }
    Ok(Probe {
        exists: head.lines().any(|l| l == "HLEXISTS"),
        content: data
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .unwrap_or_default(),
    })
}

#[derive(Debug)]
pub struct Plan {
    probe: Probe,
    new: String,
}

impl Plan {
    fn changed(&self) -> bool {
        render(
            &self
                .probe
                .content
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        ) != self.new
    }
}

pub struct Cron;

/// Where check mode records a planned crontab: the cron file's path, or a name no path has.
fn planned_key(a: &Args) -> String {
    match &a.cron_file {
        Some(f) => cron_path(f),
        None => format!("crontab:{}", a.user.as_deref().unwrap_or("")),
    }
}

fn target(a: &Args) -> String {
    match (&a.cron_file, &a.user) {
        (Some(f), _) => cron_path(f),
        (None, Some(u)) => format!("crontab of {u}"),
        (None, None) => "crontab".into(),
    }
}

impl Module for Cron {
    const NAME: &'static str = "cron";
    type Args = Args;
    type Plan = Plan;

    async fn plan(ctx: &TaskCtx<'_>, a: &Args) -> Result<Plan, ModuleError> {
        validate(a).map_err(|e| ModuleError::Failed(format!("{}: {e}", ctx.host)))?;
        let out = ctx.exec(probe_script(a)).await?;
        let mut probe = parse_probe(&out.stdout, ctx.host, a).map_err(ModuleError::Failed)?;
        // Check mode: the crontab as earlier cron tasks of this run would have left it.
        if let Some(planned) = ctx.planned {
            match planned.get(&planned_key(a)) {
                Some(super::core::PlannedPath::File {
                    content: Some(c), ..
                }) => {
                    probe.content = String::from_utf8_lossy(&c).into_owned();
                    probe.exists = true;
                }
                Some(super::core::PlannedPath::Absent) => probe = Probe::default(),
                _ => {}
            }
        }
        let new = if a.name.is_none() {
            // state: absent, cron_file, no name: the whole file goes.
            String::new()
        } else {
            render(&edit(&probe.content, a))
        };
        Ok(Plan { probe, new })
    }

    fn describe(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) -> TaskResult {
        let changed = if a.name.is_none() {
            p.probe.exists
        } else {
            p.changed()
        };
        let mut r = TaskResult::changed(changed).with(if a.env { "envs" } else { "jobs" }, {
            let names: Vec<serde_json::Value> = p
                .new
                .lines()
                .filter_map(|l| {
                    if a.env {
                        l.split_once('=')
                            .filter(|(k, _)| !k.starts_with('#') && !k.contains(' '))
                            .map(|(k, _)| k.to_string().into())
                    } else {
                        l.strip_prefix(MARK).map(|n| n.to_string().into())
                    }
                })
                .collect();
            names
        });
        if let Some(f) = &a.cron_file {
            r = r.with("cron_file", cron_path(f));
        }
        if ctx.diff && changed {
            r.diff.push(remote::edit_diff(
                &target(a),
                p.probe.exists.then_some(p.probe.content.as_bytes()),
                Some(p.new.as_bytes()),
            ));
        }
        r
    }

    fn simulate(ctx: &TaskCtx<'_>, a: &Args, p: &Plan) {
        let planned = if a.name.is_none() {
            super::core::PlannedPath::Absent
        } else {
            super::core::PlannedPath::File {
                content: Some(p.new.clone().into_bytes()),
                mode: None,
            }
        };
        ctx.plan_path(&planned_key(a), planned);
    }

    async fn apply(
        ctx: &TaskCtx<'_>,
        a: &Args,
        p: Plan,
        done: TaskResult,
    ) -> Result<TaskResult, ModuleError> {
        let out = match &a.cron_file {
            Some(f) if a.name.is_none() => {
                ctx.exec(format!("rm -f -- {}", shell_quote(&cron_path(f))))
                    .await?
            }
            Some(f) => {
                let opts = WriteOpts {
                    mode: Some("0644"),
                    owner: Some("root"),
                    group: Some("root"),
                    ..Default::default()
                };
                ctx.exec_with(
                    remote::write_script(&cron_path(f), &opts),
                    Some(p.new.into_bytes()),
                )
                .await?
            }
            None => {
                let u = a
                    .user
                    .as_ref()
                    .map(|u| format!("-u {} ", shell_quote(u)))
                    .unwrap_or_default();
                ctx.exec_with(
                    format!("PATH=$PATH:/usr/sbin:/sbin; crontab {u}-"),
                    Some(p.new.into_bytes()),
                )
                .await?
            }
        };
        if !out.success() {
            return Err(ModuleError::Failed(format!(
                "{}: could not write the {}: {}",
                ctx.host,
                target(a),
                out.stderr_str().trim()
            )));
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(v: serde_json::Value) -> Args {
        serde_json::from_value(v).unwrap()
    }

    fn apply(old: &str, v: serde_json::Value) -> String {
        let a = args(v);
        validate(&a).unwrap();
        render(&edit(old, &a))
    }

    #[test]
    fn writes_jobs_as_ansible() {
        let t = apply(
            "",
            json!({"name": "backup", "job": "/bin/b", "minute": 5, "hour": "2"}),
        );
        assert_eq!(t, "#Ansible: backup\n5 2 * * * /bin/b\n");
        assert_eq!(
            apply(
                &t,
                json!({"name": "backup", "job": "/bin/b", "minute": 5, "hour": "2"})
            ),
            t,
            "idempotent"
        );
        // Changed time: replaced in place, other lines kept.
        let old = format!("MAILTO=x\n{t}# mine\n0 * * * * other\n");
        let t2 = apply(
            &old,
            json!({"name": "backup", "job": "/bin/b", "hour": "3"}),
        );
        assert_eq!(
            t2,
            "MAILTO=x\n#Ansible: backup\n* 3 * * * /bin/b\n# mine\n0 * * * * other\n"
        );
        // Disabled, special time, cron_file user field.
        assert_eq!(
            apply(
                "",
                json!({"name": "r", "job": "j", "special_time": "reboot", "disabled": true})
            ),
            "#Ansible: r\n#@reboot j\n"
        );
        assert_eq!(
            apply(
                "",
                json!({"name": "f", "job": "j", "cron_file": "husr", "user": "www"})
            ),
            "#Ansible: f\n* * * * * www j\n"
        );
        assert_eq!(
            apply("", json!({"name": "f", "job": "j", "cron_file": "husr"})),
            "#Ansible: f\n* * * * * root j\n"
        );
        // Absent removes the marker and the job.
        assert_eq!(
            apply(&old, json!({"name": "backup", "state": "absent"})),
            "MAILTO=x\n# mine\n0 * * * * other\n"
        );
        assert_eq!(apply("", json!({"name": "backup", "state": "absent"})), "");
        // An unmarked identical job gets its marker.
        assert_eq!(
            apply("* * * * * j\n", json!({"name": "n", "job": "j"})),
            "#Ansible: n\n* * * * * j\n"
        );
    }

    #[test]
    fn env_variables() {
        let t = apply(
            "#Ansible: a\n* * * * * j\n",
            json!({"name": "PATH", "job": "/bin", "env": true}),
        );
        assert_eq!(t, "PATH=/bin\n#Ansible: a\n* * * * * j\n");
        let t = apply(
            &t,
            json!({"name": "MAILTO", "job": "me", "env": true, "insertafter": "PATH"}),
        );
        assert_eq!(t, "PATH=/bin\nMAILTO=me\n#Ansible: a\n* * * * * j\n");
        let t = apply(
            &t,
            json!({"name": "SHELL", "job": "/bin/sh", "env": true, "insertbefore": "MAILTO"}),
        );
        assert_eq!(
            t,
            "PATH=/bin\nSHELL=/bin/sh\nMAILTO=me\n#Ansible: a\n* * * * * j\n"
        );
        let t = apply(&t, json!({"name": "SHELL", "env": true, "state": "absent"}));
        assert_eq!(t, "PATH=/bin\nMAILTO=me\n#Ansible: a\n* * * * * j\n");
    }

    #[test]
    fn bad_input() {
        let bad = |v: serde_json::Value| validate(&args(v)).unwrap_err();
        assert!(
            bad(json!({"name": "a", "job": "j", "special_time": "sometimes"}))
                .contains("special_time")
        );
        assert!(
            bad(json!({"name": "a", "job": "j", "special_time": "daily", "hour": 1}))
                .contains("special time")
        );
        assert!(bad(json!({"name": "a"})).contains("job"));
        assert!(bad(json!({"job": "j"})).contains("name is required"));
        assert!(bad(json!({"name": "a", "job": "j", "minute": "1 2"})).contains("minute"));
        assert!(serde_json::from_value::<Args>(json!({"name": "a", "jobb": "j"})).is_err());
    }

    #[test]
    fn probe_messages() {
        let a = args(json!({"name": "a", "job": "j"}));
        assert_eq!(
            parse_probe(b"HLNOCRONTAB\n", "node1", &a).unwrap_err(),
            "crontab is not installed on node1: install the cron package"
        );
        let p = parse_probe(b"HLEXISTS\nHLDATA\n#Ansible: a\n* * * * * j\n", "n", &a).unwrap();
        assert!(p.exists);
        assert_eq!(p.content, "#Ansible: a\n* * * * * j\n");
        let p = parse_probe(b"HLDATA\n", "n", &a).unwrap();
        assert_eq!(p, Probe::default());
        assert!(parse_probe(b"HLERR boom\n", "n", &a)
            .unwrap_err()
            .contains("boom"));
    }
}
