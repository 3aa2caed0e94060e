// Package natsbroker is gateway.Broker over NATS: the nodes of a push
// cluster act as one through an existing NATS cluster, or through a
// nats-server embedded in each node and routed to its peers, so that
// three binaries form a cluster with nothing else installed.
package natsbroker
