"""After the search: compound scaling (`nas scale`) and retraining on a cluster (`nas retrain`)."""
