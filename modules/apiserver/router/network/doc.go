// Package network is the network router of step 5: GET /networks, GET
// /networks/{id}, POST /networks/create, POST /networks/{id}/connect and
// /disconnect, DELETE /networks/{id} and POST /networks/prune, served by
// the network controller of stage 3.22 (modules/network).
//
// Connecting a container needs the containers module: until it provides
// Containers, connect and disconnect answer dockerd's 404 "No such
// container: x".
package network
