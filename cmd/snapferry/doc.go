// Command snapferry is the CLI: one file per command, flag parsing, exit codes, text/JSON printers
// and progress rendering. Business logic lives in appliance, images, transfer, pidmgr and cron;
// this package only wires them together and maps their errors to the documented exit codes.
package main
