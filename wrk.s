Running 5s test @ http://127.0.0.1:18471/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.80ms    3.78ms  36.32ms   91.85%
    Req/Sec    59.21k    19.93k   90.97k    60.00%
  295498 requests in 5.03s, 330.84MB read
Requests/sec:  58768.67
Transfer/sec:     65.80MB
