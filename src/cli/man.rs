//! The man pages in `man/` are generated from the flag definitions; this
//! test fails when they drift. `BACKSET_BLESS=1 cargo test man_pages`
//! rewrites them.

use std::path::Path;

use clap::CommandFactory;

fn render(cmd: &clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut out)
        .expect("rendering into memory cannot fail");
    out
}

#[test]
fn man_pages_match_the_flags() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let mut top = super::Cli::command();
    top.build();
    let mut pages = vec![("backset.1".to_string(), render(&top))];
    for sub in top.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("backset-{}", sub.get_name());
        let sub = sub.clone().name(name.clone());
        pages.push((format!("{name}.1"), render(&sub)));
    }
    let bless = std::env::var_os("BACKSET_BLESS").is_some();
    let mut drifted = Vec::new();
    for (file, page) in pages {
        let path = dir.join(&file);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &page).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(page.as_slice()) {
            drifted.push(file);
        }
    }
    assert!(
        drifted.is_empty(),
        "man pages out of date: {drifted:?}; run BACKSET_BLESS=1 cargo test man_pages"
    );
}
