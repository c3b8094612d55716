// Package container is the container router of stage 5: the
// /containers and /exec routes of the Engine API over the daemon module
// (modules/daemon), with the hijacked streams of attach and exec start
// (Upgrade: tcp, 101, stdcopy multiplexing without a TTY), and the
// containers' counts and disk usage for /info and /system/df.
package container
