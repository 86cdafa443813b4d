-- wrk script: every request is a DELETE with no body, for the 405 case (a method the route does not
-- allow). Set at load time so wrk's own init formats the request with it.
wrk.method = "DELETE"
