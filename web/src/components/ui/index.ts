export { FormAlert, Notice, StatusMessage } from './alert';
export { Button, type ButtonProps } from './button';
export { Dialog } from './dialog';
export { CheckboxField, PasswordField, SelectField, TextField, type FieldError } from './field';
export { Loading } from './loading';
export { PageHeader } from './page-header';
