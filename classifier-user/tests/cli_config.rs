//! The configuration file: pin directory, policy and lists applied when `attach` creates the
//! state; flags override it; a bad file is an input error naming it.

use classifier_testkit as support;

use std::{fs, process::Command};

use classifier_lab::{Netns, veth};
use support::cli::binary;

/// A scratch directory and a pin directory, both removed when the test ends.
struct Scratch(std::path::PathBuf, String);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = Command::new(binary())
            .args([
                "--config",
                "/dev/null",
                "--pin-dir",
                &self.1,
                "detach",
                "--all",
                "--purge",
            ])
            .output();
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn attach_creates_the_state_the_config_file_describes() {
    support::require_root();
    let name = format!("classifier-config-test-{}", std::process::id());
    let pin_dir = format!("/sys/fs/bpf/{name}");
    let scratch = Scratch(std::env::temp_dir().join(&name), pin_dir.clone());
    fs::create_dir_all(&scratch.0).unwrap();
    let cdn = scratch.0.join("cdn.txt");
    fs::write(&cdn, "23.32.0.0/11 # a CDN\n2a02:26f0::/29\n").unwrap();
    let config = scratch.0.join("config.toml");
    fs::write(
        &config,
        format!(
            "pin_dir = \"{pin_dir}\"\ndry_run = true\npolicy = [\"list:cdn=LE\", \
             \"list:apple=AF11\"]\n\n[[lists]]\nname = \"apple\"\n\n[[lists]]\nname = \
             \"cdn\"\nfile = \"{}\"\n",
            cdn.display()
        ),
    )
    .unwrap();
    let ns = Netns::create("clst-f").unwrap();
    veth(&ns, "a0", &ns, "b0").unwrap();
    let run = |args: &[&str]| {
        let output = Command::new(binary())
            .env_remove("CLASSIFIER_PIN_DIR")
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    run(&["--netns", ns.name(), "attach", "a0"]);
    let status: serde_json::Value = serde_json::from_str(&run(&["status", "--json"])).unwrap();
    assert_eq!(status["pin_dir"], pin_dir.as_str());
    assert_eq!(
        status["policy"]["rules"],
        serde_json::json!(["list:cdn=LE", "list:apple=AF11"])
    );
    assert_eq!(status["policy"]["dry_run"], true);
    assert_eq!(
        status["prefixes"]["lists"],
        serde_json::json!({"apple": 4, "cdn": 2})
    );

    // --pin-dir overrides the file: there is no state there.
    let output = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .args([
            "--pin-dir",
            "/sys/fs/bpf/classifier-config-test-nowhere",
            "status",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("classifier-config-test-nowhere"));

    // A bad file: exit 2, naming it.
    fs::write(&config, "policy = [\"list:apple=LE\"\nunknown_key = 1\n").unwrap();
    let output = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("config file") && stderr.contains("config.toml"),
        "{stderr}"
    );
}
