// Package system is the system router of step 5: GET/HEAD /_ping, GET
// /version, GET /info, GET /events, GET /system/df, and GET
// /debug/startup (the boot report of this very daemon, JSON or DOT).
//
// Facts other modules own (containers, images, storage driver, volumes,
// events) come through the small optional interfaces declared here; until
// a module provides one, its fields are zero.
package system
