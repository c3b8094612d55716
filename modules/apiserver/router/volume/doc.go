// Package volume is the volume router of step 5: GET /volumes, GET
// /volumes/{name}, POST /volumes/create, DELETE /volumes/{name}, POST
// /volumes/prune and PUT /volumes/{name} (swarm only, so refused), as
// dockerd's, over the volume service of stage 3.15 (modules/volumes).
// The stage also contributes the volumes' share of GET /system/df and the
// volume driver list of GET /info.
package volume
