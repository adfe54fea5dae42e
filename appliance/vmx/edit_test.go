package vmx

import "testing"

func TestEditVMX(t *testing.T) {
	in := ".encoding = \"UTF-8\"\n# keep me\ndisplayName = \"web 01\"\nSCSI0:0.FILENAME = \"web 01-000001.vmdk\"\nsched.swap.derivedName = \"/vmfs/volumes/x/web-1.vswp\"\nnvram = \"web 01.nvram\""
	got := Edit(in, map[string]string{
		"displayName":      `web "02"`,
		"scsi0:0.fileName": "web 02.vmdk",
		"uuid.action":      "create",
	}, func(k string) bool { return k == "sched.swap.derivedname" })
	want := ".encoding = \"UTF-8\"\n# keep me\ndisplayName = \"web |2202|22\"\nSCSI0:0.FILENAME = \"web 02.vmdk\"\nnvram = \"web 01.nvram\"\nuuid.action = \"create\"\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	v, err := Parse(got)
	if err != nil || v.Value("displayname") != `web "02"` || v.Value("scsi0:0.fileName") != "web 02.vmdk" {
		t.Errorf("edited text parses as %+v, %v", v, err)
	}
}
