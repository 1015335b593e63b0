//! The Lambda binaries link with `coldstart.ld`, which `.cargo/config.toml` names in their rustflags. Cargo does not
//! track a file named only there, so a regenerated script (scripts/coldstart-layout.sh) would leave every function
//! linked by the old one; this makes it rebuild this crate, and so relink every function, when the script changes.

fn main() {
    println!("cargo::rerun-if-changed=coldstart.ld");
}
