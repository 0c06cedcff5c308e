//! The real `sgbridge` binary as a child process: started with a config
//! file, its address read from the "listening on" line, killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct Proc {
    pub child: Child,
    pub base: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// `sgbridge serve --config config` with extra environment variables.
    pub fn serve(config: &Path, env: &[(&str, &str)]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sgbridge"))
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sgbridge");
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("sgbridge exited before listening")
                .expect("stderr line");
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest.split_whitespace().next().unwrap_or_default().to_string();
            }
        };
        // Keep draining stderr so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Proc { child, base }
    }
}
