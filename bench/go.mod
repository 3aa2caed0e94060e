module github.com/workerman-go/workerman/bench

go 1.26.0

require github.com/workerman-go/workerman v0.0.0

require (
	github.com/panjf2000/ants/v2 v2.12.1 // indirect
	golang.org/x/sync v0.11.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

replace github.com/workerman-go/workerman => ../
