// Package lvtest starts the private libvirtd of scripts/libvirt/start.sh for tests (QEMU/TCG,
// its own mount namespace and sockets) and stops it by PID when the test ends. A test that
// cannot start it skips, or fails when the CI environment variable is set (CI installs
// libvirt-daemon, libvirt-daemon-driver-qemu, qemu-system-x86 and qemu-utils).
package lvtest
