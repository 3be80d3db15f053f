// Package crosstest tests the firmware builds of cross/ from the outside, the way firmware CI uses them: it runs
// cross/build.sh and cross/package.sh and checks what comes out.
//
//   - every target is a static, stripped ELF for its CPU with the version and commit embedded;
//   - two builds of the same commit are byte for byte equal (binaries and packages);
//   - the armv6 binary, under qemu-arm-static, decodes real receiver logs exactly as the amd64 binary does;
//   - the amd64 .deb installs, works and purges cleanly (as root on Debian in CI only), and lintian finds no error;
//   - `make bench` records each target's binary size (armv7 against its 10 MiB target).
//
// The package has tests only. They build with the host's Go toolchain; they are skipped with -short.
package crosstest
