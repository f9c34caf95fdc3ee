-- wrk script: POST the file named by $BODY to $TARGET_PATH as JSON; count non-200s.
local f = assert(io.open(os.getenv("BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.path = os.getenv("TARGET_PATH") or "/v2/models/mnist/infer"
wrk.headers["Content-Type"] = "application/json"
