"""MLflow's iris quickstart, unchanged but for the import line (and `multi_class`, which
scikit-learn 1.7 removed). Run it in a git repository: `python examples/mlflow_iris.py`."""

import pandas as pd
from sklearn import datasets
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split

import gitxp.mlflow as mlflow  # was: import mlflow
from gitxp.mlflow.models import infer_signature  # was: from mlflow.models import ...

X, y = datasets.load_iris(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)

params = {"solver": "lbfgs", "max_iter": 1000, "random_state": 8888}
lr = LogisticRegression(**params)
lr.fit(X_train, y_train)
y_pred = lr.predict(X_test)
accuracy = accuracy_score(y_test, y_pred)

mlflow.set_tracking_uri(uri="http://127.0.0.1:8080")  # ignored: the git repository is the store
mlflow.set_experiment("MLflow Quickstart")

with mlflow.start_run():
    mlflow.log_params(params)
    mlflow.log_metric("accuracy", accuracy)
    mlflow.set_tag("Training Info", "Basic LR model for iris data")
    signature = infer_signature(X_train, lr.predict(X_train))
    model_info = mlflow.sklearn.log_model(
        sk_model=lr,
        name="iris_model",
        signature=signature,
        input_example=X_train,
        registered_model_name="tracking-quickstart",
    )
    mlflow.set_logged_model_tags(
        model_info.model_id, {"Training Info": "Basic LR model for iris data"}
    )

loaded_model = mlflow.pyfunc.load_model(model_info.model_uri)
predictions = loaded_model.predict(X_test)

result = pd.DataFrame(X_test, columns=datasets.load_iris().feature_names)
result["actual_class"] = y_test
result["predicted_class"] = predictions
print(result[:4])
print(f"run {model_info.run_id}: accuracy {accuracy:.3f}, model {model_info.model_uri}")
