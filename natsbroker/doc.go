// Package natsbroker is gateway.Broker over NATS: the nodes of a push
// cluster act as one through an existing NATS cluster, or through a
// nats-server embedded in each node and routed to its peers, so that
// three binaries form a cluster with nothing else installed. With
// Options.History it also keeps the cluster's history in JetStream
// (Broker.History, for gateway.Options.History), so that a client resumes
// on any node, also after its own node died.
package natsbroker
