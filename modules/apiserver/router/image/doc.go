// Package image is the image router of step 5: GET /images/json, GET
// /images/{name}/json, GET /images/{name}/history, POST
// /images/create?fromSrc=- (import), POST /images/load, GET /images/get and
// GET /images/{name}/get (save), POST /images/{name}/tag, DELETE
// /images/{name} and POST /images/prune, as dockerd's, over the image
// service of modules/storage. The stage also gives GET /info its image
// count and storage driver and GET /system/df the images' share.
package image
