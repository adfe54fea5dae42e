// Package storetest is the conformance suite every store.Backend must pass: local folders, SFTP
// stores, and the remote store spoken to over the wire protocol. One suite keeps them all equal, so
// repository logic can rely on the Backend contract instead of on one implementation's habits.
//
// Use it from a backend's own test:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Backend { return local.New(t.TempDir()) })
//	}
//
// open is called once per subtest and must return a fresh, empty backend (Create not yet called);
// the suite calls Create itself and Close at the end of each subtest.
package storetest
