// Package esxi is the VMware ESXi driver of appliance.Host. It talks to the host through the
// shell tools an ESXi host has (vim-cmd, vmkfstools, esxcli, vmware), looked up on PATH or given
// in a Config, and reads .vmx and .vmsd files through appliance/vmx and VMDK descriptors through images/vmdk.
//
// Every parser follows shared/esxi-reference (the contract for host output, copied into
// testdata/reference) to the letter: rows of getallvms are split by runs of blanks and by the
// shape of the File column, never by header offsets; snapshot trees keep the misspelled "Desciption" and unpadded dates; vim.fault
// blocks become *Fault errors that unwrap to the appliance error classes; vmkfstools progress is
// read across carriage returns and success is judged by the exit status alone.
//
// Datastore paths ("/vmfs/volumes/DS/...", "[DS] dir/x.vmx") are mapped under Config.VMFSRoot so
// the same driver runs against a real host and against the simulator in appliance/esxi/sim.
package esxi
