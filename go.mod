module github.com/workerman-go/workerman

go 1.26.0

require (
	github.com/panjf2000/ants/v2 v2.12.1
	golang.org/x/sys v0.50.0
)

require (
	go.uber.org/goleak v1.3.0 // indirect
	golang.org/x/sync v0.11.0 // indirect
)
